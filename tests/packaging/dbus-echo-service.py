#!/usr/bin/python3
"""A stand-in for outpost-agent on a bus, for tests/packaging/check-dbus-policy.

Owns the bus names given on the command line (as the agent does: one connection, both names)
and answers every method call addressed to it with one string, "handled <interface>.<member>",
so a caller can tell "the bus let my call through" (that answer) from "the bus refused it"
(org.freedesktop.DBus.Error.AccessDenied, sent by the daemon before any owner sees the call).

Usage: dbus-echo-service.py ADDRESS NAME... ; prints "ready" once every name is owned.
Needs Debian's python3-dbus and python3-gi (GLib main loop).
"""
import sys

import dbus
import dbus.bus
import dbus.lowlevel
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib


def main() -> int:
    address, names = sys.argv[1], sys.argv[2:]
    DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    for name in names:
        got = bus.request_name(name, dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
        if got != dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER:
            print(f"could not own {name}: {got}", file=sys.stderr)
            return 1

    def answer(conn, msg):
        if not isinstance(msg, dbus.lowlevel.MethodCallMessage):
            return dbus.lowlevel.HANDLER_RESULT_NOT_YET_HANDLED
        reply = dbus.lowlevel.MethodReturnMessage(msg)
        reply.append(f"handled {msg.get_interface() or '(none)'}.{msg.get_member()}", signature="s")
        conn.send_message(reply)
        return dbus.lowlevel.HANDLER_RESULT_HANDLED

    bus.add_message_filter(answer)
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
