"""Writes triton_wire.json: facts taken from Triton's own generated Python stubs (the tritonclient
package), for wire_test.go to check client/proto/grpc_service.proto against.

    python3 -m venv /tmp/tcvenv && /tmp/tcvenv/bin/pip install "tritonclient[grpc]"
    /tmp/tcvenv/bin/python client/testdata/triton_wire.py > client/testdata/triton_wire.json

The file holds (1) the GRPCInferenceService methods with their request/response types and
streaming flags, (2) every field (name, number, type, repeated, message type, oneof) of the
messages our .proto declares, and (3) messages built and serialized by Triton's stubs with every
field of our subset set, as hex, beside their JSON form, for a byte-level decode check.
"""

import json
import sys
from importlib.metadata import version

import tritonclient.grpc.model_config_pb2 as mc
import tritonclient.grpc.service_pb2 as s
from google.protobuf import json_format

# The messages client/proto/grpc_service.proto declares (nested ones are reached from these).
OURS = [
    "ServerLiveRequest", "ServerLiveResponse", "ServerReadyRequest", "ServerReadyResponse",
    "ModelReadyRequest", "ModelReadyResponse", "ServerMetadataRequest", "ServerMetadataResponse",
    "ModelMetadataRequest", "ModelMetadataResponse", "InferParameter", "InferTensorContents",
    "ModelInferRequest", "ModelInferResponse", "ModelStreamInferResponse", "ModelConfigRequest",
    "ModelConfigResponse", "ModelStatisticsRequest", "StatisticDuration", "InferStatistics",
    "ModelStatistics", "ModelStatisticsResponse", "ModelRepositoryParameter",
    "RepositoryIndexRequest", "RepositoryIndexResponse", "RepositoryModelLoadRequest",
    "RepositoryModelLoadResponse", "RepositoryModelUnloadRequest", "RepositoryModelUnloadResponse",
]


def fields(desc, out):
    rows = []
    for f in desc.fields:
        row = {
            "name": f.name,
            "number": f.number,
            "type": f.type,  # FieldDescriptor.TYPE_* (proto wire-level type)
            "repeated": f.is_repeated,
        }
        if f.message_type is not None:
            row["message"] = f.message_type.full_name
        if f.containing_oneof is not None:
            row["oneof"] = f.containing_oneof.name
        rows.append(row)
    out[desc.full_name] = rows
    for n in desc.nested_types:
        fields(n, out)


def params(p):
    p["b"].bool_param = True
    p["i"].int64_param = -7
    p["s"].string_param = "x"
    p["d"].double_param = 0.25
    p["u"].uint64_param = 18446744073709551615


def contents(c):
    c.bool_contents.extend([True, False])
    c.int_contents.extend([-1, 2])
    c.int64_contents.extend([-3])
    c.uint_contents.extend([4])
    c.uint64_contents.extend([5])
    c.fp32_contents.extend([1.5])
    c.fp64_contents.extend([-2.5])
    c.bytes_contents.extend([b"ab", b""])


def samples():
    req = s.ModelInferRequest(model_name="omnikv", model_version="1", id="req-1")
    params(req.parameters)
    i = req.inputs.add(name="text_input", datatype="BYTES", shape=[1])
    params(i.parameters)
    contents(i.contents)
    o = req.outputs.add(name="text_output")
    params(o.parameters)
    req.raw_input_contents.extend([b"\x02\x00\x00\x00hi"])

    resp = s.ModelInferResponse(model_name="omnikv", model_version="1", id="req-1")
    params(resp.parameters)
    ot = resp.outputs.add(name="text_output", datatype="BYTES", shape=[1])
    params(ot.parameters)
    contents(ot.contents)
    resp.raw_output_contents.extend([b"\x01\x00\x00\x00a"])
    stream = s.ModelStreamInferResponse(error_message="boom")
    stream.infer_response.CopyFrom(resp)

    meta = s.ModelMetadataResponse(name="omnikv", versions=["1"], platform="omnikv")
    meta.inputs.add(name="text_input", datatype="BYTES", shape=[1])
    meta.outputs.add(name="text_output", datatype="BYTES", shape=[-1])

    dur = lambda n: s.StatisticDuration(count=n, ns=1000 * n)
    st = s.InferStatistics(success=dur(1), fail=dur(2), queue=dur(3), compute_input=dur(4),
                           compute_infer=dur(5), compute_output=dur(6))
    stats = s.ModelStatisticsResponse()
    stats.model_stats.add(name="omnikv", version="1", last_inference=1700000000000,
                          inference_count=9, execution_count=8, inference_stats=st)

    load = s.RepositoryModelLoadRequest(repository_name="repo", model_name="omnikv")
    load.parameters["config"].string_param = '{"max_batch_size":0}'
    load.parameters["b"].bool_param = True
    load.parameters["i"].int64_param = 3
    load.parameters["file:1/model.bin"].bytes_param = b"\x00\x01"
    unload = s.RepositoryModelUnloadRequest(repository_name="repo", model_name="omnikv")
    unload.parameters["unload_dependents"].bool_param = True

    index = s.RepositoryIndexResponse()
    index.models.add(name="omnikv", version="1", state="READY", reason="ok")

    cfg = s.ModelConfigResponse()
    cfg.config.CopyFrom(mc.ModelConfig(name="omnikv", backend="omnikv", max_batch_size=0))

    return [
        s.ServerLiveResponse(live=True),
        s.ServerReadyResponse(ready=True),
        s.ModelReadyRequest(name="omnikv", version="1"),
        s.ModelReadyResponse(ready=True),
        s.ServerMetadataResponse(name="triton", version="2.x", extensions=["parameters", "sequence"]),
        s.ModelMetadataRequest(name="omnikv", version="1"),
        meta,
        req,
        stream,
        s.ModelConfigRequest(name="omnikv", version="1"),
        cfg,
        s.ModelStatisticsRequest(name="omnikv", version="1"),
        stats,
        s.RepositoryIndexRequest(repository_name="repo", ready=True),
        index,
        load,
        unload,
    ]


def main():
    svc = s.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    methods = [{
        "name": m.name,
        "input": m.input_type.full_name,
        "output": m.output_type.full_name,
        "client_streaming": m.client_streaming,
        "server_streaming": m.server_streaming,
    } for m in svc.methods]
    schema = {}
    for name in OURS:
        fields(s.DESCRIPTOR.message_types_by_name[name], schema)
    out = {
        "source": "tritonclient %s grpc/service_pb2.py" % version("tritonclient"),
        "package": s.DESCRIPTOR.package,
        "service": svc.full_name,
        "methods": methods,
        "messages": schema,
        "samples": [{
            "message": m.DESCRIPTOR.full_name,
            "hex": m.SerializeToString(deterministic=True).hex(),
            "json": json.loads(json_format.MessageToJson(m, preserving_proto_field_name=True)),
        } for m in samples()],
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
