//! The protobuf tables of `autoscaling/v2` HorizontalPodAutoscaler (what `kubectl
//! autoscale` sends): field numbers of Kubernetes' `autoscaling/v2/generated.proto`.
//! A create's `status` is ignored, as Kubernetes ignores it.

use super::{Message, OBJECT_META, T};

static TARGET_REF: Message = Message {
    name: "CrossVersionObjectReference",
    fields: &[
        (1, "kind", T::Str),
        (2, "name", T::Str),
        (3, "apiVersion", T::Str),
    ],
};
static METRIC_TARGET: Message = Message {
    name: "MetricTarget",
    fields: &[
        (1, "type", T::Str),
        (2, "value", T::Qty),
        (3, "averageValue", T::Qty),
        (4, "averageUtilization", T::Int),
    ],
};
static RESOURCE_SOURCE: Message = Message {
    name: "ResourceMetricSource",
    fields: &[(1, "name", T::Str), (2, "target", T::Msg(&METRIC_TARGET))],
};
static CONTAINER_RESOURCE_SOURCE: Message = Message {
    name: "ContainerResourceMetricSource",
    fields: &[
        (1, "name", T::Str),
        (2, "target", T::Msg(&METRIC_TARGET)),
        (3, "container", T::Str),
    ],
};
static METRIC_SPEC: Message = Message {
    name: "MetricSpec",
    fields: &[
        (1, "type", T::Str),
        (4, "resource", T::Msg(&RESOURCE_SOURCE)),
        (7, "containerResource", T::Msg(&CONTAINER_RESOURCE_SOURCE)),
    ],
};
static POLICY: Message = Message {
    name: "HPAScalingPolicy",
    fields: &[
        (1, "type", T::Str),
        (2, "value", T::Int0),
        (3, "periodSeconds", T::Int0),
    ],
};
static RULES: Message = Message {
    name: "HPAScalingRules",
    fields: &[
        (1, "selectPolicy", T::Str),
        (2, "policies", T::RepMsg(&POLICY)),
        (3, "stabilizationWindowSeconds", T::Int),
    ],
};
static BEHAVIOR: Message = Message {
    name: "HorizontalPodAutoscalerBehavior",
    fields: &[
        (1, "scaleUp", T::Msg(&RULES)),
        (2, "scaleDown", T::Msg(&RULES)),
    ],
};
static SPEC: Message = Message {
    name: "HorizontalPodAutoscalerSpec",
    fields: &[
        (1, "scaleTargetRef", T::Msg(&TARGET_REF)),
        (2, "minReplicas", T::Int),
        (3, "maxReplicas", T::Int0),
        (4, "metrics", T::RepMsg(&METRIC_SPEC)),
        (5, "behavior", T::Msg(&BEHAVIOR)),
    ],
};
pub(super) static HPA: Message = Message {
    name: "HorizontalPodAutoscaler",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "spec", T::Msg(&SPEC)),
        (3, "status", T::Skip),
    ],
};
