"""Values the apps and the tests share."""

SECRET_CARD = "4242424242424242"
