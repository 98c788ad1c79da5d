"""`/admin/preflight/`: staff paste or upload a message and see the pre-send checks as a table.

Any staff member may use it: it reads the message it is given and writes nothing.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.template.response import TemplateResponse

from compliance.preflight.answer import COMMERCIAL, TRANSACTIONAL, preflight
from compliance.preflight.checks import NotAMessage


def max_bytes() -> int:
    """The API's limit (fbl.views.reports.RawMessageParser)."""
    return settings.INBOUND_MAX_BYTES * 4


class PreflightForm(forms.Form):
    pasted = forms.CharField(
        label="Message",
        required=False,
        strip=False,  # the bytes as given: DKIM signs them
        widget=forms.Textarea(attrs={"rows": 16, "cols": 100, "spellcheck": "false"}),
        help_text="The whole message with its headers, as it will be sent. Pasting may change "
        "line ends and spaces; upload the file when a DKIM signature must verify.",
    )
    upload = forms.FileField(label="or a file", required=False, help_text="a .eml file")
    kind = forms.ChoiceField(
        choices=[
            (COMMERCIAL, "Commercial (marketing, newsletters)"),
            (TRANSACTIONAL, "Transactional (receipts, password resets)"),
        ],
        initial=COMMERCIAL,
        widget=forms.RadioSelect,
    )
    mail_from = forms.CharField(
        label="Envelope sender",
        required=False,
        max_length=320,
        help_text="MAIL FROM, for SPF alignment; empty: the message's Return-Path",
    )

    def clean(self):
        data = super().clean()
        pasted, upload = data.get("pasted"), data.get("upload")
        if bool(pasted and pasted.strip()) == bool(upload):
            raise forms.ValidationError("Paste a message or upload a file (one of the two).")
        if upload and upload.size > max_bytes():
            self.add_error("upload", f"the file is larger than {max_bytes()} bytes")
        return data

    def raw(self) -> bytes:
        upload = self.cleaned_data.get("upload")
        return upload.read() if upload else self.cleaned_data["pasted"].encode("utf-8")


def page(request):
    form = PreflightForm(request.POST or None, request.FILES or None)
    answer = None
    if request.method == "POST" and form.is_valid():
        try:
            answer = preflight(
                form.raw(),
                kind=form.cleaned_data["kind"],
                mail_from=form.cleaned_data["mail_from"] or None,
            )
        except NotAMessage as exc:
            form.add_error(None, f"This is not a message: {exc}.")
    context = {
        **admin.site.each_context(request),
        "title": "Pre-send message check",
        "form": form,
        "answer": answer,
    }
    return TemplateResponse(request, "admin/preflight/check.html", context)
