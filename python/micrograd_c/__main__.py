"""Command line: ``python -m micrograd_c demo`` runs micrograd's moons demo on the C engine; ``train`` and
``predict`` train a model on a CSV file and predict with it (see micrograd_c.cli)."""

import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    commands = {
        "demo": "train micrograd's moons demo",
        "train": "train an MLP on a CSV file and save it",
        "predict": "predict with a saved model: a CSV of predictions on stdout",
    }
    if argv and argv[0] == "--version":
        from micrograd_c import cli

        return cli.main(argv, prog="python -m micrograd_c")
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: python -m micrograd_c COMMAND [options]\n\ncommands:")
        for name, text in commands.items():
            print(f"  {name:8s} {text}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    if argv[0] in ("train", "predict"):
        from micrograd_c import cli

        return cli.main(argv, prog="python -m micrograd_c")
    from micrograd_c import demo

    return demo.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
