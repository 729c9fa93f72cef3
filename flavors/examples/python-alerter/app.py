"""py-alerter: a strata alerter flavor written in Python (componentize-py).

It does what a real alerter does, on the local machine: it checks its configuration,
keeps an `alerts.log` in the directory its `path` field grants, writes an alert there
for every pipeline run, and keeps its phase in the state strata hands back on every
call (a flavor keeps nothing between calls itself).

Build: `make` in this directory (see the Makefile). Try: `strata flavor test py_alerter.wasm`.
"""

import json
import os

from wit_world import exports
from componentize_py_types import Err, Ok
# strata's `types` is `strata_flavor_types`: the world also imports wasi:http's `types`.
from wit_world.imports import host, strata_flavor_types as types

LEVELS = ["info", "warning", "error"]
LOG = "alerts.log"


def config_of(pairs):
    return dict(pairs)


def state_of(ctx):
    """The state strata handed back, or a fresh one."""
    if ctx.state:
        return json.loads(ctx.state.decode("utf-8"))
    return {"phase": "registered"}


def saved(state):
    return Ok(json.dumps(state, sort_keys=True).encode("utf-8"))


def log_path(ctx):
    return os.path.join(config_of(ctx.config)["path"], LOG)


def append(ctx, line):
    with open(log_path(ctx), "a", encoding="utf-8") as f:
        f.write(line + "\n")


class Lifecycle(exports.Lifecycle):
    def describe(self):
        field = types.FieldSpec
        return types.FlavorInfo(
            name="py-alerter",
            component_type=types.ComponentType.ALERTER,
            version="0.1.0",
            description="Writes alerts for a channel to alerts.log in a local directory (a Python flavor).",
            config=[
                field("channel", types.FieldKind.TEXT, True, None,
                      "The channel alerts go to: lower case letters, digits, - and _."),
                field("min_level", types.FieldKind.TEXT, False, "info",
                      "The least serious alert that is written: info, warning or error."),
                field("path", types.FieldKind.PATH, True, None,
                      "Directory on this machine where alerts.log is written."),
            ],
            supported_schemes=[],
            requirements=[],
            origins=[],
        )

    def validate(self, config):
        c = config_of(config)
        problems = []
        channel = c.get("channel", "")
        if not channel or not all(ch.islower() or ch.isdigit() or ch in "-_" for ch in channel):
            problems.append(types.FieldError(
                "channel", f"`{channel}` is not a channel name: use lower case letters, digits, - and _"))
        level = c.get("min_level", "info")
        if level not in LEVELS:
            problems.append(types.FieldError(
                "min_level", f"`{level}` is not a level: use one of {', '.join(LEVELS)}"))
        if problems:
            raise Err(problems)

    def provision(self, ctx):
        # Idempotent: a second provision (after a crash, say) keeps the log as it is.
        state = state_of(ctx)
        if not os.path.exists(log_path(ctx)):
            try:
                append(ctx, f"alerts for #{config_of(ctx.config)['channel']}")
            except OSError as e:
                return Err(f"cannot write {log_path(ctx)}: {e}")
            host.log(types.Level.INFO, f"created {log_path(ctx)}")
        state["phase"] = "provisioned"
        return saved(state)

    def deprovision(self, ctx):
        try:
            os.remove(log_path(ctx))
        except FileNotFoundError:
            pass
        except OSError as e:
            return Err(f"cannot remove {log_path(ctx)}: {e}")
        return saved({"phase": "registered"})

    def resume(self, ctx):
        state = state_of(ctx)
        state["phase"] = "running"
        return saved(state)

    def suspend(self, ctx):
        state = state_of(ctx)
        state["phase"] = "provisioned"
        return saved(state)

    def status(self, ctx):
        state = state_of(ctx)
        try:
            with open(log_path(ctx), encoding="utf-8") as f:
                alerts = sum(1 for line in f if line.startswith("["))
            exists = True
        except FileNotFoundError:
            exists, alerts = False, 0
        running = exists and state.get("phase") == "running"
        detail = f"{LOG} {'holds ' + str(alerts) + ' alerts' if exists else 'is missing'}; {state['phase']}"
        return types.Status(exists, running, detail)

    def prepare_pipeline_deployment(self, ctx, runtime):
        c = config_of(ctx.config)
        if c.get("min_level", "info") != "info":
            return  # a run starting is an `info` alert
        # The user's parameters; strata's own (`strata.run_id`, …) are left out.
        params = ", ".join(f"{k}={v}" for k, v in runtime if not k.startswith("strata."))
        try:
            append(ctx, f"[info] #{c['channel']}: a pipeline run starts ({params or 'no parameters'})")
        except OSError as e:
            raise Err(f"cannot write {log_path(ctx)}: {e}")
