"""Subscriptions: catch up from the log, then deliver each new event live, exactly once.

They live in the store package (``eventlab.store.subscription``), next to the
stores whose writes wake them; this module is their public name.

>>> from eventlab.subscription import Subscription, SubscriptionError
"""

from .store.subscription import Subscription, SubscriptionError

__all__ = ["Subscription", "SubscriptionError"]
