"""Masking of patient phone and ID numbers for every list and export (PIPL minimisation)."""
from __future__ import annotations


def mask_phone(phone: str | None) -> str | None:
    """138****5678: enough to recognise, not to dial."""
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    keep_head = 3 if len(digits) >= 8 else 1
    return digits[:keep_head] + "*" * (len(digits) - keep_head - 4) + digits[-4:]


def mask_id_number(number: str | None) -> str | None:
    """110101********123X: region and check digits only."""
    if not number:
        return number
    text = number.strip()
    if len(text) <= 8:
        return "*" * len(text)
    return text[:6] + "*" * (len(text) - 10) + text[-4:]
