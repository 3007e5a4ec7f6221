"""A one-file Django project reporting to Snag through sentry-sdk's
DjangoIntegration, or with SHOP_SDK=raven through raven 6.10's Django app:
real ORM (SQLite), real auth users, runserver."""

import json
import logging
import os
import sys
import tempfile

import django
from django.conf import settings

# Run as a script, this file is also the URLconf and middleware module
# Django imports by name: one module object, configured once.
sys.modules.setdefault("django_shop", sys.modules[__name__])

def scrub(event, hint):
    """The team's before_send: card numbers never leave the process."""
    request = event.get("request") or {}
    if isinstance(request.get("data"), dict) and "card_number" in request["data"]:
        request["data"]["card_number"] = "[scrubbed]"
    for exc in (event.get("exception") or {}).get("values", []):
        for frame in (exc.get("stacktrace") or {}).get("frames", []):
            for name in ("card_number", "body", "payload"):
                if name in frame.get("vars", {}):
                    frame["vars"][name] = "[scrubbed]"
    return event


RAVEN = os.environ.get("SHOP_SDK") == "raven"

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    SECRET_KEY="django-shop-test-only",
    ROOT_URLCONF="django_shop",
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"]
    + (["raven.contrib.django.apps.RavenConfig"] if RAVEN else []),
    RAVEN_CONFIG={"dsn": os.environ["SENTRY_DSN"], "release": "django-shop@3.1", "environment": "production",
                  "include_paths": ["__main__"]},
    MIDDLEWARE=["django_shop.HeaderUserMiddleware"],
    DATABASES={"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB") or os.path.join(tempfile.mkdtemp(), "shop.sqlite3"),
    }},
    LOGGING_CONFIG=None,
    USE_TZ=True,
)

import sentry_sdk  # noqa: E402
from sentry_sdk.integrations.django import DjangoIntegration  # noqa: E402

if not RAVEN:
    sentry_sdk.init(
        dsn=os.environ["SENTRY_DSN"],
        release="django-shop@3.1",
        environment="production",
        integrations=[DjangoIntegration()],
        send_default_pii=True,
        include_local_variables=True,
        before_send=scrub,
    )
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

logging.basicConfig(level=logging.INFO)
log = logging.getLogger("shop.checkout")


class HeaderUserMiddleware:
    """Stands in for a login: the test names the user in a header and the
    request carries a real `auth.User` row, as after AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.contrib.auth.models import AnonymousUser

        name = request.headers.get("X-User")
        request.user = User.objects.filter(username=name).first() if name else None
        request.user = request.user or AnonymousUser()
        return self.get_response(request)


class CouponExpired(Exception):
    pass


def apply_coupon(order_total, coupon):
    if coupon.startswith("OLD"):
        raise CouponExpired(f"coupon {coupon} expired")
    return order_total * 0.9


@csrf_exempt
def checkout(request, order_id):
    coupon = request.GET.get("coupon", "")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM auth_user WHERE username = %s", [request.user.username])
    log.info("checking out order %s", order_id)
    body = json.loads(request.body)
    card_number = body["card_number"]
    order_total = 42.5 * body.get("items", 1)
    total = apply_coupon(order_total, coupon)
    return HttpResponse(f"charged {total} to {card_number[-4:]}")


def health(request):
    return HttpResponse("ok")


urlpatterns = [
    path("orders/<int:order_id>/checkout", checkout),
    path("health", health),
]


if __name__ == "__main__":
    from django.core.management import call_command, execute_from_command_line

    call_command("migrate", verbosity=0)
    User.objects.create_user("alice", email="alice@example.com", password="x")
    execute_from_command_line([sys.argv[0], "runserver", "--noreload", f"127.0.0.1:{os.environ['PORT']}"])
