"""Tests for report.py: python3 -m unittest discover -s tests/bench -p 'test_*.py'"""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import report  # noqa: E402

MACHINE = {"kind": "machine", "cpu": "Test CPU", "threads": 2, "mem_bytes": 2**31, "model": "m.gguf",
           "weight_bytes_per_token": 96_000_000, "read_gb_s": 10.0, "peak_gflop_s": 100.0,
           "probes": [{"name": "read", "unit": "GB/s", "one_thread": 5.0, "all_threads": 10.0}]}


class RenderTest(unittest.TestCase):
    def row_for(self, text, ctx):
        for line in text.splitlines():
            if line.startswith(f"| {ctx} |"):
                return [c.strip() for c in line.strip("|").split("|")]
        self.fail(f"no row for context {ctx} in:\n{text}")

    def test_ratios(self):
        cases = [
            # (llama prefill, ours prefill, llama decode, ours decode, bound decode) -> expected cells
            # (llama prefill, ours prefill, llama decode, dense decode, sparse decode, bound decode) ->
            # (prefill ratio, dense ratio, sparse ratio, bound/llama, bound/dense)
            ((100.0, 50.0, 10.0, 20.0, 15.0, 5.0), ("0.50", "2.00", "1.50", "50%", "25%")),
            ((200.0, 300.0, 8.0, 4.0, 2.0, 4.0), ("1.50", "0.50", "0.25", "50%", "100%")),
        ]
        for (lp, op, ld, od, sd, bd), want in cases:
            bound = [MACHINE, {"kind": "bound", "context": 128, "decode_ms_per_token_bound": bd,
                               "prefill_tokens_per_s_bound": 1000.0}]
            llama = [{"context": 128, "prefill_tokens_per_s": lp, "decode_ms_per_token": ld, "version": "v1"}]
            ours = [{"mode": "dense", "context": 128, "prefill_tokens_per_s": op, "decode_ms_per_token": od},
                    {"mode": "omnikv", "context": 128, "prefill_tokens_per_s": op, "decode_ms_per_token": sd}]
            cells = self.row_for(report.render(bound, llama, ours), 128)
            self.assertEqual((cells[3], cells[7], cells[9], cells[11], cells[12]), want)

    def test_missing_engine(self):
        bound = [MACHINE, {"kind": "bound", "context": 2048, "decode_ms_per_token_bound": 9.0,
                           "prefill_tokens_per_s_bound": 700.0}]
        cells = self.row_for(report.render(bound, [], []), 2048)
        self.assertEqual(cells[1], "–")
        self.assertEqual(cells[3], "–")
        self.assertEqual(cells[10], "9.00")

    def test_read_jsonl_skips_logs_and_rejects_bad_json(self):
        with tempfile.TemporaryDirectory() as d:
            good = os.path.join(d, "good.jsonl")
            with open(good, "w") as f:
                f.write('loading model...\n{"context": 1, "prefill_tokens_per_s": 2}\n')
            self.assertEqual(report.read_jsonl(good), [{"context": 1, "prefill_tokens_per_s": 2}])
            bad = os.path.join(d, "bad.jsonl")
            with open(bad, "w") as f:
                f.write('{"context": \n')
            with self.assertRaises(ValueError):
                report.read_jsonl(bad)


if __name__ == "__main__":
    unittest.main()
