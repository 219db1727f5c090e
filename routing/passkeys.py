"""Passkey ceremonies (WebAuthn, the `webauthn` library): enrolling with an invite, signing
in, and a fresh verification of who is signed in.

Every challenge is stored and answered once (routing.tables.ConsoleChallenge); registration
asks for a discoverable credential with user verification, and every answer must be user
verified, for this console's origin and host name (RelyingParty).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from routing.access import (
    CHALLENGE_VALID,
    Ceremony,
    Refused,
    RelyingParty,
    audit,
    digest,
    staff_member,
    start_session,
)
from routing.runtime import Runtime
from routing.tables import ConsoleChallenge, ConsoleSession, Passkey, StaffInvite
from routing.uow import unit_of_work


def _challenge(rt: Runtime, purpose: str, challenge: bytes, staff_id=None, detail="") -> str:  # noqa: ANN001
    now = rt.clock()
    challenge_id = secrets.token_urlsafe(24)
    with unit_of_work(rt) as uow:
        uow.session.exec(delete(ConsoleChallenge).where(ConsoleChallenge.expires_at < now))
        uow.session.add(
            ConsoleChallenge(
                id=challenge_id,
                purpose=purpose,
                staff_id=staff_id,
                challenge=bytes_to_base64url(challenge),
                detail=detail,
                expires_at=now + CHALLENGE_VALID,
            )
        )
    return challenge_id


def _take_challenge(session: Session, challenge_id: str, purpose: str, now: datetime):  # noqa: ANN202
    """The stored challenge, deleted as it is read (a ceremony's answer counts once)."""
    row = session.get(ConsoleChallenge, challenge_id or "-")
    if row is None or row.purpose != purpose or row.expires_at < now:
        raise Refused("This sign-in step has expired. Start again.")
    session.delete(row)
    session.flush()
    return row


def _open_invite(session: Session, token: str, now: datetime) -> StaffInvite:
    row = session.get(StaffInvite, digest(token or "-"))
    if row is None or row.used_at is not None or row.expires_at < now:
        raise Refused(
            "This enrolment link is not valid: it was used, it expired (links last 24 hours) "
            "or it was revoked. Ask a coordinator for a new one."
        )
    return row


def enrol_options(rt: Runtime, token: str, rp: RelyingParty) -> tuple[Ceremony, str]:
    """The options to register a passkey with an invite's token, and whose it will be."""
    with Session(rt.engine) as session:
        row = _open_invite(session, token, rt.clock())
        staff_id = row.staff_id
        taken = session.exec(select(Passkey.credential_id).where(Passkey.staff_id == staff_id))
        exclude = [PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in taken]
    person = staff_member(rt, staff_id)
    if person is None:
        raise Refused("This enrolment link is for someone no longer in the rota.")
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=secrets.token_bytes(16),
        user_name=staff_id,
        user_display_name=person.name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=exclude,
    )
    challenge_id = _challenge(rt, "enrol", options.challenge, staff_id, detail=digest(token))
    return Ceremony(challenge_id, options_to_json(options)), staff_id


def enrol(rt: Runtime, token: str, challenge_id: str, credential: str, rp: RelyingParty) -> str:
    """Register the passkey the browser made and sign its owner in. Returns the session's
    cookie token. Raises Refused (nothing stored) for a bad, reused or expired answer."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        invite_row = _open_invite(session, token, now)
        stored = _take_challenge(session, challenge_id, "enrol", now)
        if stored.detail != invite_row.token_hash:
            raise Refused("This sign-in step has expired. Start again.")
        try:
            made = verify_registration_response(
                credential=credential,
                expected_challenge=base64url_to_bytes(stored.challenge),
                expected_rp_id=rp.id,
                expected_origin=rp.origin,
                require_user_verification=True,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            raise Refused(f"The passkey could not be registered ({exc}).") from None
        staff_id = invite_row.staff_id
        invite_row.used_at = now
        session.add(invite_row)
        session.add(
            Passkey(
                staff_id=staff_id,
                credential_id=bytes_to_base64url(made.credential_id),
                public_key=bytes_to_base64url(made.credential_public_key),
                sign_count=made.sign_count,
                created_at=now,
                last_used_at=now,
            )
        )
        audit(session, now, staff_id, "console_enrolled")
        return start_session(session, staff_id, now)


def signin_options(rt: Runtime, rp: RelyingParty, staff_id: str | None = None) -> Ceremony:
    """The options to ask for a passkey: any of this hotline's, or `staff_id`'s own (a fresh
    verification of who is signed in)."""
    allow = None
    if staff_id is not None:
        with Session(rt.engine) as session:
            ids = session.exec(select(Passkey.credential_id).where(Passkey.staff_id == staff_id))
            allow = [PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in ids]
    options = generate_authentication_options(
        rp_id=rp.id,
        allow_credentials=allow,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    purpose = "verify" if staff_id else "signin"
    return Ceremony(_challenge(rt, purpose, options.challenge, staff_id), options_to_json(options))


def _check_assertion(
    session: Session, stored: ConsoleChallenge, credential: str, rp: RelyingParty, now: datetime
) -> Passkey:
    try:
        credential_id = json.loads(credential)["id"]
    except (ValueError, KeyError, TypeError):
        raise Refused("The browser's answer was not a passkey.") from None
    key = session.exec(select(Passkey).where(Passkey.credential_id == str(credential_id))).first()
    if key is None or (stored.staff_id is not None and key.staff_id != stored.staff_id):
        raise Refused("This passkey is not registered here (or was revoked).")
    try:
        checked = verify_authentication_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(stored.challenge),
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=base64url_to_bytes(key.public_key),
            credential_current_sign_count=key.sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise Refused(f"The passkey was not accepted ({exc}).") from None
    key.sign_count, key.last_used_at = checked.new_sign_count, now
    session.add(key)
    return key


def sign_in(rt: Runtime, challenge_id: str, credential: str, rp: RelyingParty) -> str:
    """Check a passkey's answer and start a session. Returns the cookie token."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        stored = _take_challenge(uow.session, challenge_id, "signin", now)
        key = _check_assertion(uow.session, stored, credential, rp, now)
        if staff_member(rt, key.staff_id) is None:
            raise Refused("Your passkey belongs to someone no longer in the rota.")
        audit(uow.session, now, key.staff_id, "console_signed_in")
        return start_session(uow.session, key.staff_id, now)


def verify_again(
    rt: Runtime, token: str, challenge_id: str, credential: str, rp: RelyingParty
) -> None:
    """A signed-in person used their passkey again: their session is freshly verified."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        row = uow.session.get(ConsoleSession, digest(token))
        stored = _take_challenge(uow.session, challenge_id, "verify", now)
        if row is None or row.staff_id != stored.staff_id:
            raise Refused("Your session has ended. Sign in again.")
        _check_assertion(uow.session, stored, credential, rp, now)
        row.verified_at = now
        uow.session.add(row)
        audit(uow.session, now, row.staff_id, "console_verified")
