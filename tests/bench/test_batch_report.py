"""Tests for batch_report.py: python3 -m unittest discover -s tests/bench -p 'test_*.py'"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import batch_report  # noqa: E402

MACHINE = {"kind": "machine", "cpu": "Test CPU", "threads": 2, "read_gb_s": 10.0, "peak_gflop_s": 100.0}


def ours(batch, ms, weight=100_000_000, kv=0, flops=0.0):
    return {"mode": "dense", "batch": batch, "context": 128, "decode_ms_per_step": ms,
            "decode_tokens_per_s": batch / ms * 1000, "weight_bytes_per_step": weight, "kv_bytes_per_step": kv,
            "flops_per_step": flops}


class BatchReportTest(unittest.TestCase):
    def cells(self, text, batch):
        for line in text.splitlines():
            if line.startswith(f"| {batch} |"):
                return [c.strip() for c in line.strip("|").split("|")]
        self.fail(f"no row for batch {batch} in:\n{text}")

    def test_bound_share_scale_and_anchor(self):
        # batch 1: 100 MB at 10 GB/s = 10 ms bound (memory), measured 20 ms: 50%.
        # batch 4: 4 GFLOP at 100 GFLOP/s = 40 ms (compute) > 10 ms (memory), measured 50 ms: 80%.
        rows = [ours(1, 20.0), ours(4, 50.0, flops=4e9)]
        llama = [{"batch": 1, "decode_tokens_per_s": 25.0}, {"batch": 4, "decode_tokens_per_s": 160.0}]
        text = batch_report.render([MACHINE], rows, llama, [])
        one, four = self.cells(text, 1), self.cells(text, 4)
        self.assertEqual((one[3], one[4], one[5], one[6], one[8]), ("1.00x", "10.00", "memory", "50%", "2.00x"))
        self.assertEqual((four[3], four[4], four[5], four[6], four[8]), ("1.60x", "40.00", "compute", "80%", "0.50x"))

    def test_marks_a_drop(self):
        text = batch_report.render([MACHINE], [ours(1, 10.0), ours(2, 30.0)], [], [])
        self.assertIn("below the previous", self.cells(text, 2)[2])
        self.assertNotIn("below", self.cells(text, 1)[2])

    def test_needs_the_machine_line(self):
        with self.assertRaises(SystemExit):
            batch_report.render([], [ours(1, 10.0)], [], [])


if __name__ == "__main__":
    unittest.main()
