"""The web side: enqueue tasks and exit."""

import sys

from celery_tasks import charge_card, send_receipt

send_receipt.delay(int(sys.argv[1]))
charge_card.delay(int(sys.argv[1]), 19.99)
