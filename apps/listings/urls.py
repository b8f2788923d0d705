from django.urls import path

from apps.listings import portal, staff, storefront

urlpatterns = [
    path("marketplace/", storefront.storefront, name="storefront"),
    path("marketplace/search/", storefront.storefront_search, name="storefront_search"),
    path("marketplace/media/<str:sha256>.webp", storefront.media, name="listing_media"),
    path("marketplace/publishers/<str:slug>/", storefront.publisher_profile, name="publisher_profile"),
    path("marketplace/<str:key>/", storefront.listing_detail, name="listing_detail"),
    path("orgs/<str:org_id>/extensions/<str:extension_id>/listing/", portal.listing_edit, name="listing_edit"),
    path(
        "orgs/<str:org_id>/extensions/<str:extension_id>/listing/preview/",
        portal.listing_preview,
        name="listing_preview",
    ),
    path("staff/listings/", staff.staff_listings, name="staff_listings"),
    path("staff/listings/<str:listing_id>/", staff.staff_listing, name="staff_listing"),
]
