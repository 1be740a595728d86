// triton.h: this project's own declarations of the part of the Triton server and backend C API
// (API 1.x) that libtriton_omnikv.so calls. Written from the documented interface: opaque handle
// types, the enum values we use, and prototypes of the functions we call. The functions are not
// defined anywhere in this library: they stay undefined in the .so and resolve from the
// tritonserver process when Triton dlopens the backend.
#ifndef OMNIKV_TRITON_H
#define OMNIKV_TRITON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Opaque handles owned by Triton.
typedef struct TRITONSERVER_Error TRITONSERVER_Error;
typedef struct TRITONSERVER_Message TRITONSERVER_Message;
typedef struct TRITONBACKEND_Backend TRITONBACKEND_Backend;
typedef struct TRITONBACKEND_Model TRITONBACKEND_Model;
typedef struct TRITONBACKEND_ModelInstance TRITONBACKEND_ModelInstance;
typedef struct TRITONBACKEND_Request TRITONBACKEND_Request;
typedef struct TRITONBACKEND_Input TRITONBACKEND_Input;
typedef struct TRITONBACKEND_Output TRITONBACKEND_Output;
typedef struct TRITONBACKEND_Response TRITONBACKEND_Response;
typedef struct TRITONBACKEND_ResponseFactory TRITONBACKEND_ResponseFactory;
typedef struct TRITONSERVER_Parameter TRITONSERVER_Parameter;
typedef struct TRITONSERVER_MetricFamily TRITONSERVER_MetricFamily;
typedef struct TRITONSERVER_Metric TRITONSERVER_Metric;
typedef struct TRITONSERVER_MetricArgs TRITONSERVER_MetricArgs;

// Enumerations: C enums are int-sized, so these typedefs match the ABI.
typedef enum {
	OMNIKV_ERR_UNKNOWN = 0,
	OMNIKV_ERR_INTERNAL = 1,
	OMNIKV_ERR_NOT_FOUND = 2,
	OMNIKV_ERR_INVALID_ARG = 3,
	OMNIKV_ERR_UNAVAILABLE = 4,
	OMNIKV_ERR_UNSUPPORTED = 5,
	OMNIKV_ERR_ALREADY_EXISTS = 6,
	OMNIKV_ERR_CANCELLED = 7
} TRITONSERVER_Error_Code;

typedef enum {
	OMNIKV_TYPE_INVALID = 0,
	OMNIKV_TYPE_BOOL = 1,
	OMNIKV_TYPE_UINT8 = 2,
	OMNIKV_TYPE_UINT16 = 3,
	OMNIKV_TYPE_UINT32 = 4,
	OMNIKV_TYPE_UINT64 = 5,
	OMNIKV_TYPE_INT8 = 6,
	OMNIKV_TYPE_INT16 = 7,
	OMNIKV_TYPE_INT32 = 8,
	OMNIKV_TYPE_INT64 = 9,
	OMNIKV_TYPE_FP16 = 10,
	OMNIKV_TYPE_FP32 = 11,
	OMNIKV_TYPE_FP64 = 12,
	OMNIKV_TYPE_BYTES = 13,
	OMNIKV_TYPE_BF16 = 14
} TRITONSERVER_DataType;

typedef enum {
	OMNIKV_MEM_CPU = 0,
	OMNIKV_MEM_CPU_PINNED = 1,
	OMNIKV_MEM_GPU = 2
} TRITONSERVER_MemoryType;

typedef enum {
	OMNIKV_PARAM_STRING = 0,
	OMNIKV_PARAM_INT = 1,
	OMNIKV_PARAM_BOOL = 2,
	OMNIKV_PARAM_DOUBLE = 3,
	OMNIKV_PARAM_BYTES = 4
} TRITONSERVER_ParameterType;

typedef enum {
	OMNIKV_LOG_INFO = 0,
	OMNIKV_LOG_WARN = 1,
	OMNIKV_LOG_ERROR = 2,
	OMNIKV_LOG_VERBOSE = 3
} TRITONSERVER_LogLevel;

typedef enum {
	OMNIKV_KIND_AUTO = 0,
	OMNIKV_KIND_CPU = 1,
	OMNIKV_KIND_GPU = 2,
	OMNIKV_KIND_MODEL = 3
} TRITONSERVER_InstanceGroupKind;

typedef enum {
	OMNIKV_ARTIFACT_FILESYSTEM = 0
} TRITONBACKEND_ArtifactType;

typedef enum {
	OMNIKV_METRIC_COUNTER = 0,
	OMNIKV_METRIC_GAUGE = 1,
	OMNIKV_METRIC_HISTOGRAM = 2
} TRITONSERVER_MetricKind;

// Flags.
#define OMNIKV_RESPONSE_COMPLETE_FINAL 1u // TRITONSERVER_RESPONSE_COMPLETE_FINAL
#define OMNIKV_REQUEST_RELEASE_ALL 1u     // TRITONSERVER_REQUEST_RELEASE_ALL
#define OMNIKV_REQUEST_SEQUENCE_START 1u  // TRITONSERVER_REQUEST_FLAG_SEQUENCE_START
#define OMNIKV_REQUEST_SEQUENCE_END 2u    // TRITONSERVER_REQUEST_FLAG_SEQUENCE_END

// Errors, messages, logging (server API).
TRITONSERVER_Error* TRITONSERVER_ErrorNew(TRITONSERVER_Error_Code code, const char* msg);
void TRITONSERVER_ErrorDelete(TRITONSERVER_Error* error);
TRITONSERVER_Error_Code TRITONSERVER_ErrorCode(TRITONSERVER_Error* error);
const char* TRITONSERVER_ErrorMessage(TRITONSERVER_Error* error);
TRITONSERVER_Error* TRITONSERVER_MessageSerializeToJson(
	TRITONSERVER_Message* message, const char** base, size_t* byte_size);
TRITONSERVER_Error* TRITONSERVER_MessageDelete(TRITONSERVER_Message* message);
bool TRITONSERVER_LogIsEnabled(TRITONSERVER_LogLevel level);
TRITONSERVER_Error* TRITONSERVER_LogMessage(
	TRITONSERVER_LogLevel level, const char* filename, const int line, const char* msg);

// Backend, model, instance.
TRITONSERVER_Error* TRITONBACKEND_ApiVersion(uint32_t* major, uint32_t* minor);
TRITONSERVER_Error* TRITONBACKEND_BackendName(TRITONBACKEND_Backend* backend, const char** name);
// The backend config message stays Triton's (do not delete it); {"cmdline": {"key": "value"}}.
TRITONSERVER_Error* TRITONBACKEND_BackendConfig(
	TRITONBACKEND_Backend* backend, TRITONSERVER_Message** backend_config);
TRITONSERVER_Error* TRITONBACKEND_ModelName(TRITONBACKEND_Model* model, const char** name);
TRITONSERVER_Error* TRITONBACKEND_ModelVersion(TRITONBACKEND_Model* model, uint64_t* version);
TRITONSERVER_Error* TRITONBACKEND_ModelRepository(
	TRITONBACKEND_Model* model, TRITONBACKEND_ArtifactType* artifact_type, const char** location);
// The model config message is the caller's: delete it with TRITONSERVER_MessageDelete.
TRITONSERVER_Error* TRITONBACKEND_ModelConfig(
	TRITONBACKEND_Model* model, const uint32_t config_version, TRITONSERVER_Message** model_config);
TRITONSERVER_Error* TRITONBACKEND_ModelInstanceName(
	TRITONBACKEND_ModelInstance* instance, const char** name);
TRITONSERVER_Error* TRITONBACKEND_ModelInstanceKind(
	TRITONBACKEND_ModelInstance* instance, TRITONSERVER_InstanceGroupKind* kind);
TRITONSERVER_Error* TRITONBACKEND_ModelInstanceDeviceId(
	TRITONBACKEND_ModelInstance* instance, int32_t* device_id);
TRITONSERVER_Error* TRITONBACKEND_ModelInstanceModel(
	TRITONBACKEND_ModelInstance* instance, TRITONBACKEND_Model** model);
TRITONSERVER_Error* TRITONBACKEND_ModelInstanceReportStatistics(
	TRITONBACKEND_ModelInstance* instance, TRITONBACKEND_Request* request, const bool success,
	const uint64_t exec_start_ns, const uint64_t compute_start_ns, const uint64_t compute_end_ns,
	const uint64_t exec_end_ns);
TRITONSERVER_Error* TRITONBACKEND_ModelInstanceReportBatchStatistics(
	TRITONBACKEND_ModelInstance* instance, const uint64_t batch_size, const uint64_t exec_start_ns,
	const uint64_t compute_start_ns, const uint64_t compute_end_ns, const uint64_t exec_end_ns);

// Requests and their inputs.
TRITONSERVER_Error* TRITONBACKEND_RequestId(TRITONBACKEND_Request* request, const char** id);
TRITONSERVER_Error* TRITONBACKEND_RequestCorrelationId(TRITONBACKEND_Request* request, uint64_t* id);
TRITONSERVER_Error* TRITONBACKEND_RequestCorrelationIdString(
	TRITONBACKEND_Request* request, const char** id);
TRITONSERVER_Error* TRITONBACKEND_RequestFlags(TRITONBACKEND_Request* request, uint32_t* flags);
TRITONSERVER_Error* TRITONBACKEND_RequestIsCancelled(TRITONBACKEND_Request* request, bool* is_cancelled);
TRITONSERVER_Error* TRITONBACKEND_RequestInputCount(TRITONBACKEND_Request* request, uint32_t* count);
TRITONSERVER_Error* TRITONBACKEND_RequestInputByIndex(
	TRITONBACKEND_Request* request, const uint32_t index, TRITONBACKEND_Input** input);
TRITONSERVER_Error* TRITONBACKEND_RequestParameterCount(TRITONBACKEND_Request* request, uint32_t* count);
TRITONSERVER_Error* TRITONBACKEND_RequestParameter(TRITONBACKEND_Request* request, const uint32_t index,
	const char** key, TRITONSERVER_ParameterType* type, const void** vvalue);
TRITONSERVER_Error* TRITONBACKEND_RequestRelease(TRITONBACKEND_Request* request, uint32_t release_flags);
TRITONSERVER_Error* TRITONBACKEND_InputProperties(TRITONBACKEND_Input* input, const char** name,
	TRITONSERVER_DataType* datatype, const int64_t** shape, uint32_t* dims_count,
	uint64_t* byte_size, uint32_t* buffer_count);
TRITONSERVER_Error* TRITONBACKEND_InputBuffer(TRITONBACKEND_Input* input, const uint32_t index,
	const void** buffer, uint64_t* buffer_byte_size, TRITONSERVER_MemoryType* memory_type,
	int64_t* memory_type_id);

// Decoupled responses.
TRITONSERVER_Error* TRITONBACKEND_ResponseFactoryNew(
	TRITONBACKEND_ResponseFactory** factory, TRITONBACKEND_Request* request);
TRITONSERVER_Error* TRITONBACKEND_ResponseFactoryDelete(TRITONBACKEND_ResponseFactory* factory);
TRITONSERVER_Error* TRITONBACKEND_ResponseFactorySendFlags(
	TRITONBACKEND_ResponseFactory* factory, const uint32_t send_flags);
TRITONSERVER_Error* TRITONBACKEND_ResponseFactoryIsCancelled(
	TRITONBACKEND_ResponseFactory* factory, bool* is_cancelled);
TRITONSERVER_Error* TRITONBACKEND_ResponseNewFromFactory(
	TRITONBACKEND_Response** response, TRITONBACKEND_ResponseFactory* factory);
TRITONSERVER_Error* TRITONBACKEND_ResponseDelete(TRITONBACKEND_Response* response);
TRITONSERVER_Error* TRITONBACKEND_ResponseOutput(TRITONBACKEND_Response* response,
	TRITONBACKEND_Output** output, const char* name, const TRITONSERVER_DataType datatype,
	const int64_t* shape, const uint32_t dims_count);
TRITONSERVER_Error* TRITONBACKEND_OutputBuffer(TRITONBACKEND_Output* output, void** buffer,
	const uint64_t buffer_byte_size, TRITONSERVER_MemoryType* memory_type, int64_t* memory_type_id);
TRITONSERVER_Error* TRITONBACKEND_ResponseSetStringParameter(
	TRITONBACKEND_Response* response, const char* name, const char* value);
TRITONSERVER_Error* TRITONBACKEND_ResponseSetIntParameter(
	TRITONBACKEND_Response* response, const char* name, const int64_t value);
TRITONSERVER_Error* TRITONBACKEND_ResponseSetBoolParameter(
	TRITONBACKEND_Response* response, const char* name, const bool value);
TRITONSERVER_Error* TRITONBACKEND_ResponseSend(
	TRITONBACKEND_Response* response, const uint32_t send_flags, TRITONSERVER_Error* error);

// Custom metrics (server API; shown on the metrics port). A family is process-wide and must outlive
// its metrics; labels are STRING parameters, copied by MetricNew (the caller deletes them).
TRITONSERVER_Parameter* TRITONSERVER_ParameterNew(
	const char* name, const TRITONSERVER_ParameterType type, const void* value);
void TRITONSERVER_ParameterDelete(TRITONSERVER_Parameter* parameter);
TRITONSERVER_Error* TRITONSERVER_MetricFamilyNew(TRITONSERVER_MetricFamily** family,
	const TRITONSERVER_MetricKind kind, const char* name, const char* description);
TRITONSERVER_Error* TRITONSERVER_MetricFamilyDelete(TRITONSERVER_MetricFamily* family);
TRITONSERVER_Error* TRITONSERVER_MetricNew(TRITONSERVER_Metric** metric,
	TRITONSERVER_MetricFamily* family, const TRITONSERVER_Parameter** labels, const uint64_t label_count);
TRITONSERVER_Error* TRITONSERVER_MetricDelete(TRITONSERVER_Metric* metric);
TRITONSERVER_Error* TRITONSERVER_MetricIncrement(TRITONSERVER_Metric* metric, double value);
TRITONSERVER_Error* TRITONSERVER_MetricSet(TRITONSERVER_Metric* metric, double value);

// Histogram metrics came with Triton 24.08 (server API still 1.34). They are NOT declared as functions:
// a reference to them would leave the library unloadable (RTLD_NOW) in older servers. metrics.go looks
// them up with dlsym and calls them through these pointer types.
typedef TRITONSERVER_Error* (*OMNIKV_MetricArgsNewFn)(TRITONSERVER_MetricArgs** args);
typedef TRITONSERVER_Error* (*OMNIKV_MetricArgsSetHistogramFn)(
	TRITONSERVER_MetricArgs* args, const double* buckets, const uint64_t buckets_count);
typedef TRITONSERVER_Error* (*OMNIKV_MetricArgsDeleteFn)(TRITONSERVER_MetricArgs* args);
typedef TRITONSERVER_Error* (*OMNIKV_MetricNewWithArgsFn)(TRITONSERVER_Metric** metric,
	TRITONSERVER_MetricFamily* family, const TRITONSERVER_Parameter** labels, const uint64_t label_count,
	const TRITONSERVER_MetricArgs* args);
typedef TRITONSERVER_Error* (*OMNIKV_MetricObserveFn)(TRITONSERVER_Metric* metric, double value);

#endif // OMNIKV_TRITON_H
