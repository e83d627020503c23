"""The one serialisation of a document that is hashed or signed (the indicator forms' JSON twins, regional
submissions): sorted keys, no spaces, UTF-8 text (not \\u escapes), no NaN."""
from __future__ import annotations

import json


def canonical(data) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
