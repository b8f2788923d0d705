// After django-otp-webauthn's script has stored a new passkey, show it in the list (a plain
// reload: the list, the status badge and the remove buttons are rendered by the server).
document.addEventListener("otp_webauthn.register_complete", () => window.location.reload());
