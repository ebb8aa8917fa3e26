#!/usr/bin/python3
"""chat_worker.py: the backend worker of the demo chat (deploy/demo, issue 11), on the sioc SDK.

    /usr/bin/python3 deploy/demo/chat_worker.py [--redis URL] [--key-prefix P]

(env fallbacks SIOC_REDIS_URL or SIOC_REDIS, SIOC_KEY_PREFIX). It serves the gateways' namespaces
/ and /chat (they run with --auth backend, so every connect waits for this worker's answer).
Who is online in a room is read from the broker's registry mirror in Redis (DESIGN.md §3.4),
never from this process's memory: any number of these workers can share the load.
"""

import argparse
import itertools
import logging
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "sdk", "python"))

import redis  # noqa: E402
import sioc  # noqa: E402

CHAT = "/chat"
LOBBY = "lobby"
USER_ROOM = "user:%s"                 # the gateways' --user-room (the default)
NAME = re.compile(r"[\w.-]{1,24}")    # user names: letters (any script), digits, '.', '_', '-'
ROOM = re.compile(r"[\w.-]{1,32}")    # no ':', so nobody can post into a user:<name> room
MAX_TEXT = 500
MAX_LISTED = 200                      # at most this many members in an online list

log = logging.getLogger("chat")


def text_of(data, key, limit):
    """data[key] stripped, if it is a non-empty string of at most `limit` characters; else None."""
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str) or not 0 < len(value.strip()) <= limit:
        return None
    return value.strip()


def build(worker):
    """Registers the chat's handlers on `worker`."""
    prefix = worker.key_prefix

    def online(room, joined=None, left=None):
        """[{sid, name}] of the sockets in `room` of /chat, cluster-wide, from the broker's mirror:
        set P:room:/chat:<room> holds the sids, hash P:sid:<sid> each one's uid (our user name).
        The mirror trails the gateways by a few milliseconds, so the change being handled
        (`joined` = (sid, name), `left` = sid) is applied on top of what it says."""
        key = "%s:room:%s:%s" % (prefix, CHAT, room)
        sids = {s.decode() for s in itertools.islice(worker.redis.sscan_iter(key), MAX_LISTED)}
        sids.discard(left)
        names = {}
        if joined is not None:
            sids.discard(joined[0])
            names[joined[0]] = joined[1]
        sids = sorted(sids)
        pipe = worker.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.hget("%s:sid:%s" % (prefix, sid), "uid")
        for sid, uid in zip(sids, pipe.execute()):
            if uid:  # no hash: the socket has just gone
                names[sid] = uid.decode()
        return [{"sid": sid, "name": name} for sid, name in names.items()]

    def entered(sid, name, room):
        """Tells `room` that `name` came in, with the new list of who is there."""
        worker.emit("notice", {"room": room, "text": "%s has entered the room." % name}, to=room)
        worker.emit("members", {"room": room, "members": online(room, joined=(sid, name))},
                    to=room)

    @worker.on("connect")
    def connect_main(sid, auth):
        return True  # auth backend asks about / too; the demo has nothing there

    @worker.on("connect", namespace=CHAT)
    def connect(sid, auth):
        name = text_of(auth, "name", 24)
        if name is None or not NAME.fullmatch(name):
            log.info("refused %r (%s)", auth.get("name") if isinstance(auth, dict) else auth, sid)
            raise sioc.ConnectionRefusedError(
                "pick a name of 1 to 24 letters, digits, '.', '_' or '-'")
        node = worker.request.node  # the gateway this socket is connected to
        log.info("connect %s %s on %s", name, sid, node)
        worker.emit("welcome", {"name": name, "sid": sid, "node": node})  # to this socket
        entered(sid, name, LOBBY)
        # uid: the gateway puts the socket in room user:<name> and the registry records the user
        return {"uid": name, "rooms": [LOBBY]}

    @worker.on("join", namespace=CHAT)
    def join(sid, room=None):
        if not isinstance(room, str) or not ROOM.fullmatch(room):
            return {"error": "a room name is 1 to 32 letters, digits, '.', '_' or '-'"}
        name = worker.request.uid
        log.info("join %s %s %s", name, sid, room)
        worker.join_room(sid, room)  # applied before the broadcasts below, so the joiner gets them
        entered(sid, name, room)
        return {"room": room}

    @worker.on("leave", namespace=CHAT)
    def leave(sid, room=None):
        if not isinstance(room, str) or not ROOM.fullmatch(room):
            return {"error": "no such room"}
        name = worker.request.uid
        log.info("leave %s %s %s", name, sid, room)
        worker.leave_room(sid, room)
        worker.emit("notice", {"room": room, "text": "%s has left the room." % name}, to=room)
        worker.emit("members", {"room": room, "members": online(room, left=sid)}, to=room)
        return {"room": room}

    @worker.on("message", namespace=CHAT)
    def message(sid, data=None):
        room, text = text_of(data, "room", 32), text_of(data, "text", MAX_TEXT)
        if room is None or text is None:
            return {"error": "a message needs a room and 1 to %d characters" % MAX_TEXT}
        name = worker.request.uid
        log.info("message %s -> %s (%d chars)", name, room, len(text))
        worker.emit("said", {"room": room, "name": name, "text": text}, to=room)
        return {"ok": True}

    @worker.on("private", namespace=CHAT)
    def private(sid, data=None):
        to, text = text_of(data, "to", 24), text_of(data, "text", MAX_TEXT)
        if to is None or text is None:
            return {"error": "a private message needs a name and 1 to %d characters" % MAX_TEXT}
        name = worker.request.uid
        # every socket of the user is in its user room; the registry says whether there is one
        if not worker.redis.scard("%s:room:%s:%s" % (prefix, CHAT, USER_ROOM % to)):
            return {"error": "%s is not online" % to}
        log.info("private %s -> %s (%d chars)", name, to, len(text))
        # one broadcast to both users' rooms: the target's sockets, and the sender's as a copy
        worker.emit("private", {"from": name, "to": to, "text": text},
                    to=[USER_ROOM % to, USER_ROOM % name])
        return {"ok": True}

    @worker.on("who", namespace=CHAT)
    def who(sid, room=None):
        if not isinstance(room, str) or not ROOM.fullmatch(room):
            return {"error": "no such room"}
        return {"room": room, "members": online(room)}

    @worker.on("disconnect", namespace=CHAT)
    def disconnect(sid, reason):
        # The entry names no rooms, and the mirror may have dropped the socket already (always so
        # when the broker reports a lost node), so every page hears it and updates its own lists.
        name = worker.request.uid
        log.info("disconnect %s %s (%s)", name, sid, reason)
        if name:
            worker.emit("gone", {"sid": sid, "name": name}, broadcast=True)


def main():
    parser = argparse.ArgumentParser(description="the sioc demo chat worker")
    parser.add_argument("--redis", default=os.environ.get("SIOC_REDIS_URL")
                        or os.environ.get("SIOC_REDIS") or "redis://127.0.0.1:6379")
    parser.add_argument("--key-prefix", default=os.environ.get("SIOC_KEY_PREFIX") or "sioc")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")

    shown = re.sub(r"//[^@/]*@", "//***@", args.redis)  # no password in the log
    worker = sioc.Worker(args.redis, key_prefix=args.key_prefix, namespaces=["/", CHAT])
    build(worker)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    while not worker.stopped:  # Redis may come up after us (docker-compose)
        try:
            worker.setup()  # the consumer groups exist from here on: no entry is missed
            break
        except redis.exceptions.RedisError as exc:
            log.warning("redis %s: %s; retrying", shown, exc)
            time.sleep(1)
    if not worker.stopped:
        log.info("chat worker ready (redis %s, namespaces /, %s)", shown, CHAT)
        worker.run()  # until SIGTERM/SIGINT, within a second
    worker.close()
    log.info("chat worker stopped")


if __name__ == "__main__":
    main()
