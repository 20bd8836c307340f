"""Evaluation of a classifier on a split: accuracy, one-vs-rest AUC, loss, probabilities."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from dpecnn.data import Split


@torch.no_grad()
def predict_proba(model: nn.Module, split: Split, device: torch.device, batch_size: int = 512) -> np.ndarray:
    model.eval()
    chunks = [
        F.softmax(model(split.inputs(slice(i, i + batch_size), device)), dim=1).cpu()
        for i in range(0, len(split), batch_size)
    ]
    return torch.cat(chunks).double().numpy()


def auc(probs: np.ndarray, labels: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC (MedMNIST's metric); NaN when a class is absent (checked first:
    sklearn warns on a binary split with one class, where it raises on a multi-class one)."""
    if len(np.unique(labels)) < probs.shape[1]:
        return float("nan")
    try:
        if probs.shape[1] == 2:
            return float(roc_auc_score(labels, probs[:, 1]))
        return float(roc_auc_score(labels, probs, multi_class="ovr", labels=list(range(probs.shape[1]))))
    except ValueError:
        return float("nan")


def evaluate(model: nn.Module, split: Split, device: torch.device) -> dict:
    probs = predict_proba(model, split, device)
    labels = split.labels.numpy()
    nll = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    return {
        "acc": float((probs.argmax(1) == labels).mean()),
        "auc": auc(probs, labels),
        "loss": nll,
        "probs": probs,
        "labels": labels,
    }
