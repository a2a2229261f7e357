"""Fine-tuning: sequence classification and token tagging (Devlin et al. 2019, Sec. 4).

BERT is fine-tuned by adding one linear layer and training *all* parameters on the labelled
task: on the pooled ``[CLS]`` vector for a sequence label (Sec. 4.1), on every token's final
vector for tags, predicting each word's tag from its first WordPiece (Sec. 5.3). Their
recipe (Appendix A.3): batch 16 or 32, learning rate 2e-5 to 5e-5, 2 to 4 epochs, dropout 0.1,
model selection on the validation set.

:func:`finetune` is the whole run, on the shared :class:`~minibert.train.loop.Trainer`:

    from minibert.train.finetuning import finetune
    result = finetune(overrides={"task": "wiki-topic", "init": "runs/tiny"}, out="runs/topic")
    print(result.summary())

One module per job, in the order a run uses them:

    settings.py        FinetuneConfig (task.*, init, tokenizer, preset, epochs, ...), its defaults
    initialization.py  init -> where the weights and tokenizer are; the model with its new head
    data.py            examples -> token ids (unpadded) -> padded batches
    task.py            FinetuningTask: the loss, and the metrics after each evaluation
    early_stopping.py  model selection on validation; stop after `patience` evaluations
    predictions.py     logits -> predictions -> accuracy, macro-F1, entity F1
    report.py          FinetuneResult; results.json, predictions.jsonl, confusion_matrix.json
    crossval.py        one run per fold, mean and spread over folds
    run.py             finetune(): checks, one run or a cross-validation

``metrics.jsonl`` has pretraining's line format: ``train`` lines (``cls_loss``/``tag_loss``,
accuracy, lr, ...), ``eval`` lines on the validation split during training (plus
``accuracy``, ``macro_f1`` and, for tagging, seqeval's ``entity_f1``), and at the end one
``validation`` and one ``test`` line for the weights kept in ``final/``.
"""

from __future__ import annotations

from minibert.train.finetuning.data import IGNORE_INDEX, EncodedSplit, encode_split
from minibert.train.finetuning.early_stopping import EarlyStopping, EarlyStoppingConfig
from minibert.train.finetuning.initialization import MINILM, InitSource, minilm_dir, resolve_init
from minibert.train.finetuning.predictions import SplitPredictions, predict
from minibert.train.finetuning.report import (
    CONFUSION_FILE,
    PREDICTIONS_FILE,
    RESULTS_FILE,
    FinetuneResult,
)
from minibert.train.finetuning.run import finetune, next_free_dir
from minibert.train.finetuning.settings import (
    FinetuneConfig,
    FinetuneTaskConfig,
    build_finetune_config,
)
from minibert.train.finetuning.task import FinetuningTask

__all__ = [
    "CONFUSION_FILE",
    "IGNORE_INDEX",
    "MINILM",
    "PREDICTIONS_FILE",
    "RESULTS_FILE",
    "EarlyStopping",
    "EarlyStoppingConfig",
    "EncodedSplit",
    "FinetuneConfig",
    "FinetuneResult",
    "FinetuneTaskConfig",
    "FinetuningTask",
    "InitSource",
    "SplitPredictions",
    "build_finetune_config",
    "encode_split",
    "finetune",
    "minilm_dir",
    "next_free_dir",
    "predict",
    "resolve_init",
]
