"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps the messages it receives."""

from __future__ import annotations

import email
import socket
import threading

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """aiosmtpd handler that stores each message.

    Clearing ``release`` holds every client at RCPT, before any message is
    accepted, until it is set again (at most 60 s).
    """

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.rcpt_reached = threading.Event()
        self.release = threading.Event()
        self.release.set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_reached.set()
        # Blocks this server's event loop on purpose: the client waits for
        # the reply, as it would on a slow mail server.
        self.release.wait(timeout=60)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted"


def start_server() -> tuple[Controller, Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, inbox
