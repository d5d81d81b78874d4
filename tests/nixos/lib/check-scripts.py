"""Compiles the VM tests' Python scripts (tests/nixos/scripts.nix, JSON on stdin) and reports
names they read but never define: what the NixOS test driver's pyflakes lint would refuse.
Globals the driver provides (nixos/lib/test-driver/src/test_driver/driver.py test_symbols) and
the test's machine names are known. Exit status 1 on any finding."""
import ast
import builtins
import json
import sys

DRIVER_GLOBALS = {
    "start_all", "test_script", "machines", "vlans", "driver", "log", "create_machine",
    "subtest", "run_tests", "join_all", "retry", "serial_stdout_off", "serial_stdout_on",
    "polling_condition", "Machine", "t", "os",
}


def defined_names(tree: ast.AST) -> set:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def main() -> int:
    bad = 0
    for name, test in json.load(sys.stdin).items():
        try:
            tree = ast.parse(test["script"], filename=name)
        except SyntaxError as e:
            print(f"  {name}: {e.msg} at line {e.lineno}: {e.text!r}", file=sys.stderr)
            bad += 1
            continue
        known = defined_names(tree) | DRIVER_GLOBALS | set(test["nodes"]) | set(dir(builtins))
        unknown = sorted({
            n.id for n in ast.walk(tree)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in known
        })
        if unknown:
            print(f"  {name}: undefined names {unknown}", file=sys.stderr)
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
