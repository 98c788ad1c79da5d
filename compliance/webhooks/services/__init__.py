"""Every write of the downstream webhooks: endpoints, the event outbox, deliveries."""
