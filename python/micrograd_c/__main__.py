"""Command line: ``python -m micrograd_c demo`` runs micrograd's moons demo on the C engine."""

import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    commands = {"demo": "train micrograd's moons demo"}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: python -m micrograd_c COMMAND [options]\n\ncommands:")
        for name, text in commands.items():
            print(f"  {name:8s} {text}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from micrograd_c import demo

    return demo.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
