"""Delivery channels: console, Apprise (IM bots, webhooks, e-mail), SMTP, SMS and voice."""
