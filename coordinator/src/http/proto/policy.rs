//! The protobuf table of `policy/v1` PodDisruptionBudget (what `kubectl create
//! poddisruptionbudget` sends): field numbers of Kubernetes' `policy/v1/generated.proto`.
//! A create's `status` is ignored, as Kubernetes ignores it.

use super::{Message, OBJECT_META, T};

static SPEC: Message = Message {
    name: "PodDisruptionBudgetSpec",
    fields: &[
        (1, "minAvailable", T::IntStr),
        (2, "selector", T::Msg(&super::workloads::LABEL_SELECTOR)),
        (3, "maxUnavailable", T::IntStr),
        (4, "unhealthyPodEvictionPolicy", T::Str),
    ],
};

pub(super) static PDB: Message = Message {
    name: "PodDisruptionBudget",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "spec", T::Msg(&SPEC)),
        (3, "status", T::Skip),
    ],
};
