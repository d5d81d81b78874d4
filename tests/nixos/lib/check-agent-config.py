"""Gives the agent settings the boards render (tests/nixos/eval.nix --arg agentConfigs true, JSON
on stdin) to the real `outpost-agent --check` (path in argv[1]): the agent denies unknown keys
and checks the [update] slots, bootloader keys and [k3s]/[workloads] itself, so a layout that
derives settings the agent would refuse at boot fails here. The files are rendered as
pkgs.formats.toml would (tables, arrays of tables, plain values); state_dir and the socket are
moved to a temporary folder, everything else is checked as the device would get it.
Exit status 1 on any refusal."""
import json
import pathlib
import subprocess
import sys
import tempfile


def value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return json.dumps(v)
    if isinstance(v, list) and not any(isinstance(x, dict) for x in v):
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise ValueError(f"cannot render {v!r}")


def toml(table: dict, prefix: str = "") -> list:
    is_tables = lambda v: isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
    lines = [f"[{prefix}]"] if prefix else []
    lines += [f"{k} = {value(v)}" for k, v in table.items() if not isinstance(v, dict) and not is_tables(v)]
    for k, v in table.items():
        name = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            lines += toml(v, name)
        elif is_tables(v):
            for item in v:
                lines += [f"[[{name}]]"] + [f"{kk} = {value(vv)}" for kk, vv in item.items()]
    return lines


def main() -> int:
    agent = sys.argv[1]
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings in json.load(sys.stdin).items():
            settings["state_dir"] = f"{tmp}/{name}/state"
            settings["api"]["socket"] = f"{tmp}/{name}/run/agent.sock"
            path = pathlib.Path(tmp) / f"{name}.toml"
            path.write_text("\n".join(toml(settings)) + "\n")
            r = subprocess.run([agent, "--check", "--config", str(path)], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"  {name}: {(r.stdout + r.stderr).strip()}", file=sys.stderr)
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
