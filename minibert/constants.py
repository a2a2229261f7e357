"""Constants shared by the model, the data modules and the trainers.

This module imports nothing, so the torch-free data modules (e.g. ``minibert.data.tasks``) can
use it without pulling in torch.
"""

from __future__ import annotations

#: The label of a position that takes no part in a loss: the default ``ignore_index`` of
#: ``torch.nn.functional.cross_entropy``, and the value `transformers` uses in its labels.
IGNORE_INDEX = -100
