"""`mnist-cnn report`: figures and an HTML page of what a run learned."""

from __future__ import annotations

import argparse
from pathlib import Path

from mnist_cnn.commands.common import add_data_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="figures and an HTML page: curves, confusion matrix, "
                       "mistakes, filters, feature maps, architecture",
                       description="Write a run's report (PNG figures, index.html that opens "
                       "from disk, report.md): training curves, the test-set confusion "
                       "matrix, the most confident mistakes, the first convolution's filters, "
                       "every conv and pooling layer's feature maps, the architecture.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default RUN/report)")
    add_data_dir(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return write(Path(args.run), args.out, args.data_dir)


def write(run_dir: Path, out: str | None, data_dir: str | None) -> int:
    from mnist_cnn.report import write_report

    result = write_report(run_dir, out, data_dir)
    line = result.data.trust.calibration.not_sure_raw
    print(f"Report: test accuracy {result.test_accuracy:.2%}, {len(result.figures)} figures "
          f"in {result.out_dir}/\nOpen {result.html}\n"
          f"The page's \"not sure\" line ({line:.1%}) is saved in {result.meta}")
    return 0
