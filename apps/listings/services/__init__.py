"""Every write of the listings app: one function per use case, transactional and audited."""

from apps.listings.services.counters import (
    install_count_of,
    listing_install_count_refresh,
    listing_rating_refresh,
    listing_search_refresh,
)
from apps.listings.services.listings import (
    listing_draft_update,
    listing_ensure,
    listing_icon_remove,
    listing_media_add,
    listing_screenshot_remove,
    listing_submit,
    publisher_profile_update,
)
from apps.listings.services.moderation import listing_decide, listing_feature, publisher_verify, review_moderate
from apps.listings.services.reviews import review_eligibility, review_reply, review_report, review_submit

__all__ = [
    "install_count_of",
    "listing_decide",
    "listing_draft_update",
    "listing_ensure",
    "listing_feature",
    "listing_icon_remove",
    "listing_install_count_refresh",
    "listing_media_add",
    "listing_rating_refresh",
    "listing_screenshot_remove",
    "listing_search_refresh",
    "listing_submit",
    "publisher_profile_update",
    "publisher_verify",
    "review_eligibility",
    "review_moderate",
    "review_reply",
    "review_report",
    "review_submit",
]
