"""The gallery's errors (one home: the service, the case queue and the searchers raise them)."""

from biometric.errors import BiometricError


class GalleryError(BiometricError):
    code = "gallery_error"


class InvalidCitizenId(GalleryError):
    code = "invalid_citizen_id"


class ClaimantNotFound(GalleryError):
    code = "claimant_not_found"


class CaseNotFound(GalleryError):
    code = "case_not_found"


class EnrolmentConflict(GalleryError):
    """Another enrolment of the same new claimant committed while this one was screening."""

    code = "enrolment_conflict"


class CaseAlreadyDecided(GalleryError):
    code = "case_already_decided"


class IndexUnavailable(GalleryError):
    """This gallery has no 1:N index in this process (a store-only gallery)."""

    code = "index_unavailable"
