"""Send an event from a process that knows only the event's name (no handler imported).

Needs a worker running: upnext-gevent examples.shop:worker
"""

import upnext

order_placed = upnext.Worker("web").event("order.placed")


def main() -> None:
    futures = order_placed.send(order_id="A-100", items=2)
    for value in sorted(map(str, upnext.gather(*futures, timeout=30))):
        print(value)


if __name__ == "__main__":
    main()
