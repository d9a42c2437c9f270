//! The little of Kubernetes' protobuf encoding skiff reads: client-go's generated clients
//! send built-in kinds as protobuf whatever the server prefers (kubectl's `drain` posts
//! its Evictions so, `kubectl create namespace|configmap|secret` their objects), so those
//! bodies are read here into the JSON the rest of the front end handles. The envelope is
//! `k8s\0` and a `runtime.Unknown` (type meta, raw message); field numbers are those of
//! Kubernetes' `generated.proto`. A field skiff has no table for is refused by number,
//! never dropped; other kinds are refused as an unsupported media type. Pure;
//! bounds-checked (a malformed body is an error, never a panic).

use serde_json::{json, Map, Value};

pub(crate) mod access;
mod autoscaling;
mod networking;
mod policy;

/// Kubernetes' protobuf content type.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// One field of a message: its number and its value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of one message, in order.
fn fields(mut b: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let (number, wire) = (key >> 3, key & 7);
        let f = match wire {
            0 => Field::Varint(varint(&mut b)?),
            2 => {
                let len = usize::try_from(varint(&mut b)?).map_err(|_| "length too large")?;
                if len > b.len() {
                    return Err(format!(
                        "field {number}: {len} bytes declared, {} left",
                        b.len()
                    ));
                }
                let (v, rest) = b.split_at(len);
                b = rest;
                Field::Bytes(v)
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if n > b.len() {
                    return Err(format!("field {number}: truncated"));
                }
                b = &b[n..];
                continue;
            }
            w => return Err(format!("field {number}: unsupported wire type {w}")),
        };
        out.push((number, f));
    }
    Ok(out)
}

fn varint(b: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&byte, rest) = b.split_first().ok_or("truncated varint")?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn text(v: &[u8]) -> Result<String, String> {
    String::from_utf8(v.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
}

/// The envelope: (apiVersion, kind, raw message).
fn unknown(body: &[u8]) -> Result<(String, String, &[u8]), String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("not Kubernetes protobuf (no k8s\\0 prefix)")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(rest)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
                    match (n, f) {
                        (1, Field::Bytes(v)) => api_version = text(v)?,
                        (2, Field::Bytes(v)) => kind = text(v)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(v)) => raw = v,
            _ => {}
        }
    }
    Ok((api_version, kind, raw))
}

/// ObjectMeta's name and namespace (what an Eviction carries).
fn meta(b: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(v)) => {
                m.insert("name".into(), text(v)?.into());
            }
            (3, Field::Bytes(v)) => {
                m.insert("namespace".into(), text(v)?.into());
            }
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

fn delete_options(b: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    let mut dry_run = Vec::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Varint(v)) => {
                m.insert("gracePeriodSeconds".into(), json!(v as i64));
            }
            (2, Field::Bytes(p)) => {
                let mut pre = Map::new();
                for (n, f) in fields(p)? {
                    match (n, f) {
                        (1, Field::Bytes(v)) => {
                            pre.insert("uid".into(), text(v)?.into());
                        }
                        (2, Field::Bytes(v)) => {
                            pre.insert("resourceVersion".into(), text(v)?.into());
                        }
                        _ => {}
                    }
                }
                m.insert("preconditions".into(), Value::Object(pre));
            }
            (3, Field::Varint(v)) => {
                m.insert("orphanDependents".into(), json!(v != 0));
            }
            (4, Field::Bytes(v)) => {
                m.insert("propagationPolicy".into(), text(v)?.into());
            }
            (5, Field::Bytes(v)) => dry_run.push(Value::String(text(v)?)),
            _ => {}
        }
    }
    if !dry_run.is_empty() {
        m.insert("dryRun".into(), Value::Array(dry_run));
    }
    Ok(Value::Object(m))
}

/// An Eviction (policy/v1) sent as protobuf, as its JSON.
pub fn eviction(body: &[u8]) -> Result<Value, String> {
    let (api_version, kind, raw) = unknown(body)?;
    if kind != "Eviction" || api_version != "policy/v1" {
        return Err(format!(
            "skiff reads protobuf bodies only for policy/v1 Eviction, not {api_version}/{kind}; send JSON"
        ));
    }
    let mut e = json!({"apiVersion": "policy/v1", "kind": "Eviction"});
    for (n, f) in fields(raw)? {
        match (n, f) {
            (1, Field::Bytes(v)) => e["metadata"] = meta(v)?,
            (2, Field::Bytes(v)) => e["deleteOptions"] = delete_options(v)?,
            _ => {}
        }
    }
    Ok(e)
}

/// How a field's bytes read.
#[derive(Clone, Copy)]
enum T {
    Str,
    /// A number where 0 means 0 (Go pointer fields: `replicas: 0`).
    Int,
    /// A number where 0 is the field left out (Go non-pointer fields, always sent).
    Int0,
    /// A boolean where false means false.
    Bool,
    /// A boolean where false is the field left out.
    Bool0,
    Msg(&'static Message),
    RepMsg(&'static Message),
    RepStr,
    /// `intstr.IntOrString`: type, intVal, strVal.
    IntStr,
    /// `map<string, resource.Quantity>`, each Quantity a message holding its string.
    MapQty,
    /// One `resource.Quantity`: a message holding its string.
    Qty,
    /// A create's `status`: Kubernetes ignores it, and so does skiff.
    Skip,
    MapStr,
    /// Values are bytes, written as base64 (as JSON writes Kubernetes' `[]byte`).
    MapBytes,
    /// `metav1.Time`: seconds and nanos, written as RFC 3339.
    Time,
    /// A Go struct embedded inline: its own message on the wire, its fields the parent's in
    /// JSON (an IngressRule's `IngressRuleValue`).
    Inline(&'static Message),
}

struct Message {
    name: &'static str,
    fields: &'static [(u64, &'static str, T)],
}

static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        (1, "name", T::Str),
        (2, "generateName", T::Str),
        (3, "namespace", T::Str),
        // Always sent, empty: Kubernetes no longer sets it.
        (4, "selfLink", T::Str),
        (5, "uid", T::Str),
        (6, "resourceVersion", T::Str),
        (7, "generation", T::Int0),
        (8, "creationTimestamp", T::Time),
        (11, "labels", T::MapStr),
        (12, "annotations", T::MapStr),
        (13, "ownerReferences", T::RepMsg(&OWNER_REFERENCE)),
        (14, "finalizers", T::RepStr),
    ],
};
/// What `kubectl create job --from=cronjob/...` sets on its Job.
static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        (1, "kind", T::Str),
        (3, "name", T::Str),
        (4, "uid", T::Str),
        (5, "apiVersion", T::Str),
        (6, "controller", T::Bool),
        (7, "blockOwnerDeletion", T::Bool),
    ],
};
static CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "data", T::MapStr),
        (3, "binaryData", T::MapBytes),
        (4, "immutable", T::Bool),
    ],
};
static SECRET: Message = Message {
    name: "Secret",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "data", T::MapBytes),
        (3, "type", T::Str),
        (4, "stringData", T::MapStr),
        (5, "immutable", T::Bool),
    ],
};
static PRIORITY_CLASS: Message = Message {
    name: "PriorityClass",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "value", T::Int),
        (3, "globalDefault", T::Bool),
        (4, "description", T::Str),
        (5, "preemptionPolicy", T::Str),
    ],
};
static NAMESPACE_SPEC: Message = Message {
    name: "NamespaceSpec",
    fields: &[(1, "finalizers", T::RepStr)],
};
static NAMESPACE_STATUS: Message = Message {
    name: "NamespaceStatus",
    fields: &[(1, "phase", T::Str)],
};
static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "spec", T::Msg(&NAMESPACE_SPEC)),
        (3, "status", T::Msg(&NAMESPACE_STATUS)),
    ],
};

/// The tables of what `kubectl create deployment|job|service` and `expose` send: every
/// field their generated Go code always writes (the non-pointer ones, mostly empty), and
/// the ones those commands set.
mod workloads {
    use super::{Message, OBJECT_META, T};

    static SELECTOR_REQUIREMENT: Message = Message {
        name: "LabelSelectorRequirement",
        fields: &[
            (1, "key", T::Str),
            (2, "operator", T::Str),
            (3, "values", T::RepStr),
        ],
    };
    pub(super) static LABEL_SELECTOR: Message = Message {
        name: "LabelSelector",
        fields: &[
            (1, "matchLabels", T::MapStr),
            (2, "matchExpressions", T::RepMsg(&SELECTOR_REQUIREMENT)),
        ],
    };
    static CONTAINER_PORT: Message = Message {
        name: "ContainerPort",
        fields: &[
            (1, "name", T::Str),
            (2, "hostPort", T::Int0),
            (3, "containerPort", T::Int0),
            (4, "protocol", T::Str),
            (5, "hostIP", T::Str),
        ],
    };
    static ENV_VAR: Message = Message {
        name: "EnvVar",
        fields: &[(1, "name", T::Str), (2, "value", T::Str)],
    };
    static RESOURCES: Message = Message {
        name: "ResourceRequirements",
        fields: &[(1, "limits", T::MapQty), (2, "requests", T::MapQty)],
    };
    static CONTAINER: Message = Message {
        name: "Container",
        fields: &[
            (1, "name", T::Str),
            (2, "image", T::Str),
            (3, "command", T::RepStr),
            (4, "args", T::RepStr),
            (5, "workingDir", T::Str),
            (6, "ports", T::RepMsg(&CONTAINER_PORT)),
            (7, "env", T::RepMsg(&ENV_VAR)),
            (8, "resources", T::Msg(&RESOURCES)),
            (13, "terminationMessagePath", T::Str),
            (14, "imagePullPolicy", T::Str),
            (16, "stdin", T::Bool0),
            (17, "stdinOnce", T::Bool0),
            (18, "tty", T::Bool0),
            (20, "terminationMessagePolicy", T::Str),
            (24, "restartPolicy", T::Str),
        ],
    };
    static POD_SPEC: Message = Message {
        name: "PodSpec",
        fields: &[
            (2, "containers", T::RepMsg(&CONTAINER)),
            (3, "restartPolicy", T::Str),
            (4, "terminationGracePeriodSeconds", T::Int),
            (5, "activeDeadlineSeconds", T::Int),
            (6, "dnsPolicy", T::Str),
            (7, "nodeSelector", T::MapStr),
            (8, "serviceAccountName", T::Str),
            (9, "serviceAccount", T::Str),
            (10, "nodeName", T::Str),
            (11, "hostNetwork", T::Bool0),
            (12, "hostPID", T::Bool0),
            (13, "hostIPC", T::Bool0),
            (16, "hostname", T::Str),
            (17, "subdomain", T::Str),
            (19, "schedulerName", T::Str),
            (20, "initContainers", T::RepMsg(&CONTAINER)),
            (24, "priorityClassName", T::Str),
            (25, "priority", T::Int),
            (31, "preemptionPolicy", T::Str),
        ],
    };
    static POD_TEMPLATE: Message = Message {
        name: "PodTemplateSpec",
        fields: &[
            (1, "metadata", T::Msg(&OBJECT_META)),
            (2, "spec", T::Msg(&POD_SPEC)),
        ],
    };
    static ROLLING_UPDATE: Message = Message {
        name: "RollingUpdateDeployment",
        fields: &[(1, "maxUnavailable", T::IntStr), (2, "maxSurge", T::IntStr)],
    };
    static STRATEGY: Message = Message {
        name: "DeploymentStrategy",
        fields: &[
            (1, "type", T::Str),
            (2, "rollingUpdate", T::Msg(&ROLLING_UPDATE)),
        ],
    };
    static DEPLOYMENT_SPEC: Message = Message {
        name: "DeploymentSpec",
        fields: &[
            (1, "replicas", T::Int),
            (2, "selector", T::Msg(&LABEL_SELECTOR)),
            (3, "template", T::Msg(&POD_TEMPLATE)),
            (4, "strategy", T::Msg(&STRATEGY)),
            (5, "minReadySeconds", T::Int0),
            (6, "revisionHistoryLimit", T::Int),
            (7, "paused", T::Bool0),
            (9, "progressDeadlineSeconds", T::Int),
        ],
    };
    pub(super) static DEPLOYMENT: Message = Message {
        name: "Deployment",
        fields: &[
            (1, "metadata", T::Msg(&OBJECT_META)),
            (2, "spec", T::Msg(&DEPLOYMENT_SPEC)),
            (3, "status", T::Skip),
        ],
    };
    static JOB_SPEC: Message = Message {
        name: "JobSpec",
        fields: &[
            (1, "parallelism", T::Int),
            (2, "completions", T::Int),
            (3, "activeDeadlineSeconds", T::Int),
            (4, "selector", T::Msg(&LABEL_SELECTOR)),
            (5, "manualSelector", T::Bool),
            (6, "template", T::Msg(&POD_TEMPLATE)),
            (7, "backoffLimit", T::Int),
            (8, "ttlSecondsAfterFinished", T::Int),
            (9, "completionMode", T::Str),
            (10, "suspend", T::Bool),
        ],
    };
    pub(super) static JOB: Message = Message {
        name: "Job",
        fields: &[
            (1, "metadata", T::Msg(&OBJECT_META)),
            (2, "spec", T::Msg(&JOB_SPEC)),
            (3, "status", T::Skip),
        ],
    };
    static JOB_TEMPLATE: Message = Message {
        name: "JobTemplateSpec",
        fields: &[
            (1, "metadata", T::Msg(&OBJECT_META)),
            (2, "spec", T::Msg(&JOB_SPEC)),
        ],
    };
    static CRON_JOB_SPEC: Message = Message {
        name: "CronJobSpec",
        fields: &[
            (1, "schedule", T::Str),
            (2, "startingDeadlineSeconds", T::Int),
            (3, "concurrencyPolicy", T::Str),
            (4, "suspend", T::Bool),
            (5, "jobTemplate", T::Msg(&JOB_TEMPLATE)),
            (6, "successfulJobsHistoryLimit", T::Int),
            (7, "failedJobsHistoryLimit", T::Int),
            (8, "timeZone", T::Str),
        ],
    };
    pub(super) static CRON_JOB: Message = Message {
        name: "CronJob",
        fields: &[
            (1, "metadata", T::Msg(&OBJECT_META)),
            (2, "spec", T::Msg(&CRON_JOB_SPEC)),
            (3, "status", T::Skip),
        ],
    };
    static SERVICE_PORT: Message = Message {
        name: "ServicePort",
        fields: &[
            (1, "name", T::Str),
            (2, "protocol", T::Str),
            (3, "port", T::Int0),
            (4, "targetPort", T::IntStr),
            (5, "nodePort", T::Int0),
            (6, "appProtocol", T::Str),
        ],
    };
    static SERVICE_SPEC: Message = Message {
        name: "ServiceSpec",
        fields: &[
            (1, "ports", T::RepMsg(&SERVICE_PORT)),
            (2, "selector", T::MapStr),
            (3, "clusterIP", T::Str),
            (4, "type", T::Str),
            (5, "externalIPs", T::RepStr),
            (7, "sessionAffinity", T::Str),
            (8, "loadBalancerIP", T::Str),
            (9, "loadBalancerSourceRanges", T::RepStr),
            (10, "externalName", T::Str),
            (11, "externalTrafficPolicy", T::Str),
            (12, "healthCheckNodePort", T::Int0),
            (13, "publishNotReadyAddresses", T::Bool0),
            (17, "ipFamilyPolicy", T::Str),
            (18, "clusterIPs", T::RepStr),
            (19, "ipFamilies", T::RepStr),
            (20, "allocateLoadBalancerNodePorts", T::Bool),
            (21, "loadBalancerClass", T::Str),
            (22, "internalTrafficPolicy", T::Str),
        ],
    };
    pub(super) static SERVICE: Message = Message {
        name: "Service",
        fields: &[
            (1, "metadata", T::Msg(&OBJECT_META)),
            (2, "spec", T::Msg(&SERVICE_SPEC)),
            (3, "status", T::Skip),
        ],
    };
}

/// Reads a message by its table. Generated Go marshals empty strings, zero numbers and
/// empty messages of non-pointer fields: those are absent in JSON, so they are dropped.
fn decode(b: &[u8], m: &Message) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (n, f) in fields(b)? {
        let Some(&(_, name, t)) = m.fields.iter().find(|(num, _, _)| *num == n) else {
            return Err(format!(
                "{} field {n} is not read by skiff's protobuf decoder; send the object as JSON",
                m.name
            ));
        };
        let at = |e: String| format!("{}.{name}: {e}", m.name);
        let value = match (t, &f) {
            (T::Skip, _) => continue,
            (T::Int | T::Int0, Field::Varint(v)) => json!(*v as i64),
            (T::Bool | T::Bool0, Field::Varint(v)) => json!(*v != 0),
            (T::Int | T::Int0 | T::Bool | T::Bool0, _) => {
                return Err(at("expected a varint".into()))
            }
            (T::RepMsg(inner), f) => {
                let item = Value::Object(decode(delimited(f).map_err(at)?, inner)?);
                match out.entry(name).or_insert_with(|| json!([])) {
                    Value::Array(a) => a.push(item),
                    _ => return Err(at("repeated".into())),
                }
                continue;
            }
            (T::IntStr, f) => {
                let (mut kind, mut int, mut text_val) = (0, 0i64, String::new());
                for (n, e) in fields(delimited(f).map_err(at)?)? {
                    match (n, e) {
                        (1, Field::Varint(v)) => kind = v,
                        (2, Field::Varint(v)) => int = v as i64,
                        (3, Field::Bytes(b)) => text_val = text(b).map_err(at)?,
                        _ => return Err(at("not an IntOrString".into())),
                    }
                }
                match kind {
                    1 => Value::String(text_val),
                    _ if int == 0 => continue,
                    _ => json!(int),
                }
            }
            (T::Str, f) => Value::String(text(delimited(f).map_err(at)?).map_err(at)?),
            (T::Qty, f) => {
                let mut q = String::new();
                for (n, e) in fields(delimited(f).map_err(at)?)? {
                    match (n, e) {
                        (1, Field::Bytes(s)) => q = text(s).map_err(at)?,
                        _ => return Err(at("not a Quantity".into())),
                    }
                }
                Value::String(q)
            }
            (T::Msg(inner), f) => Value::Object(decode(delimited(f).map_err(at)?, inner)?),
            (T::Inline(inner), f) => {
                out.extend(decode(delimited(f).map_err(at)?, inner)?);
                continue;
            }
            (T::RepStr, f) => {
                let item = Value::String(text(delimited(f).map_err(at)?).map_err(at)?);
                match out.entry(name).or_insert_with(|| json!([])) {
                    Value::Array(a) => a.push(item),
                    _ => return Err(at("repeated".into())),
                }
                continue;
            }
            (T::MapStr | T::MapBytes | T::MapQty, f) => {
                let (k, v) = map_entry(delimited(f).map_err(at)?, t).map_err(at)?;
                match out.entry(name).or_insert_with(|| json!({})) {
                    Value::Object(o) => o.insert(k, v),
                    _ => return Err(at("map".into())),
                };
                continue;
            }
            (T::Time, f) => {
                let mut secs = 0i64;
                for (n, e) in fields(delimited(f).map_err(at)?)? {
                    if let (1, Field::Varint(v)) = (n, e) {
                        secs = v as i64;
                    }
                }
                match u64::try_from(secs) {
                    Ok(s) if s > 0 => Value::String(skiff_api::util::rfc3339(s)),
                    _ => continue,
                }
            }
        };
        let empty = match &value {
            Value::String(s) => s.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Number(n) => matches!(t, T::Int0) && n.as_i64() == Some(0),
            Value::Bool(b) => matches!(t, T::Bool0) && !b,
            _ => false,
        };
        if !empty {
            out.insert(name.to_string(), value);
        }
    }
    Ok(out)
}

/// One entry of a map field: its key and its value (a string, bytes as base64, or a
/// Quantity's string).
fn map_entry(b: &[u8], t: T) -> Result<(String, Value), String> {
    let (mut k, mut v) = (String::new(), String::new());
    for (n, e) in fields(b)? {
        match (n, e, t) {
            (1, Field::Bytes(b), _) => k = text(b)?,
            (2, Field::Bytes(b), T::MapBytes) => v = base64(b),
            (2, Field::Bytes(b), T::MapQty) => {
                for (n, e) in fields(b)? {
                    if let (1, Field::Bytes(s)) = (n, e) {
                        v = text(s)?;
                    }
                }
            }
            (2, Field::Bytes(b), _) => v = text(b)?,
            _ => return Err("a map entry has a field other than key and value".into()),
        }
    }
    Ok((k, Value::String(v)))
}

fn delimited<'a>(f: &Field<'a>) -> Result<&'a [u8], String> {
    match f {
        Field::Bytes(v) => Ok(v),
        Field::Varint(_) => Err("expected a length-delimited field".into()),
    }
}

fn base64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// An object a client created as protobuf (`kubectl create namespace|configmap|secret`),
/// as its JSON.
pub fn object(body: &[u8]) -> Result<Value, String> {
    let (api_version, kind, raw) = unknown(body)?;
    let table = match (api_version.as_str(), kind.as_str()) {
        ("v1", "ConfigMap") => &CONFIG_MAP,
        ("v1", "Secret") => &SECRET,
        ("v1", "Namespace") => &NAMESPACE,
        ("v1", "Service") => &workloads::SERVICE,
        ("apps/v1", "Deployment") => &workloads::DEPLOYMENT,
        ("batch/v1", "Job") => &workloads::JOB,
        ("batch/v1", "CronJob") => &workloads::CRON_JOB,
        ("autoscaling/v2", "HorizontalPodAutoscaler") => &autoscaling::HPA,
        ("scheduling.k8s.io/v1", "PriorityClass") => &PRIORITY_CLASS,
        ("policy/v1", "PodDisruptionBudget") => &policy::PDB,
        ("networking.k8s.io/v1", "Ingress") => &networking::INGRESS,
        ("v1", "ServiceAccount") => &access::SERVICE_ACCOUNT,
        ("v1", "ResourceQuota") => &access::RESOURCE_QUOTA,
        ("rbac.authorization.k8s.io/v1", "Role" | "ClusterRole") => &access::ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => {
            &access::ROLE_BINDING
        }
        _ => {
            return Err(format!(
                "skiff reads protobuf bodies only for v1 Namespace, ConfigMap, Secret, Service, ServiceAccount and ResourceQuota, rbac.authorization.k8s.io/v1 roles and bindings, apps/v1 Deployment, batch/v1 Job and CronJob, autoscaling/v2 HorizontalPodAutoscaler, scheduling.k8s.io/v1 PriorityClass, networking.k8s.io/v1 Ingress and policy/v1 PodDisruptionBudget and Eviction, not {api_version}/{kind}; send JSON"
            ))
        }
    };
    let mut o = decode(raw, table)?;
    o.insert("apiVersion".into(), api_version.into());
    o.insert("kind".into(), kind.into());
    Ok(Value::Object(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, v: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, n << 3 | 2);
        put_varint(&mut out, v.len() as u64);
        out.extend_from_slice(v);
        out
    }

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn eviction_bytes(kind: &str) -> Vec<u8> {
        let type_meta = [field(1, b"policy/v1"), field(2, kind.as_bytes())].concat();
        let meta = [field(1, b"web-1"), field(3, b"default")].concat();
        let mut opts = Vec::new();
        put_varint(&mut opts, 1 << 3);
        put_varint(&mut opts, 30);
        opts.extend(field(2, &field(2, b"17")));
        opts.extend(field(4, b"Foreground"));
        let raw = [field(1, &meta), field(2, &opts)].concat();
        [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat()
    }

    #[test]
    fn an_eviction_as_json() {
        let e = eviction(&eviction_bytes("Eviction")).unwrap();
        assert_eq!(e["metadata"]["name"], "web-1");
        assert_eq!(e["metadata"]["namespace"], "default");
        assert_eq!(e["deleteOptions"]["gracePeriodSeconds"], 30);
        assert_eq!(e["deleteOptions"]["preconditions"]["resourceVersion"], "17");
        assert_eq!(e["deleteOptions"]["propagationPolicy"], "Foreground");
    }

    #[test]
    fn a_config_map_and_a_secret_as_kubectl_create_sends_them() {
        let entry = |k: &[u8], v: &[u8]| [field(1, k), field(2, v)].concat();
        let empty_time = field(8, &[]);
        let meta = [
            field(1, b"settings"),
            field(2, b""),
            field(3, b"default"),
            empty_time,
        ]
        .concat();
        let raw = [
            field(1, &meta),
            field(2, &entry(b"mode", b"edge")),
            field(3, &entry(b"bin", &[0, 255])),
        ]
        .concat();
        let tm = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), field(1, &tm), field(2, &raw)].concat();
        let cm = object(&body).unwrap();
        assert_eq!(
            cm,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": "default"},
                "data": {"mode": "edge"}, "binaryData": {"bin": "AP8="}})
        );
        let raw = [
            field(1, &field(1, b"creds")),
            field(2, &entry(b"pw", b"sword")),
            field(3, b"Opaque"),
        ]
        .concat();
        let tm = [field(1, b"v1"), field(2, b"Secret")].concat();
        let s = object(&[MAGIC.to_vec(), field(1, &tm), field(2, &raw)].concat()).unwrap();
        assert_eq!(s["data"]["pw"], "c3dvcmQ=");
        assert_eq!(s["type"], "Opaque");
        // An owner reference (kubectl create job --from=cronjob/...).
        let owner = [
            field(1, b"CronJob"),
            field(3, b"tick"),
            field(4, b"u-1"),
            field(5, b"batch/v1"),
            varint_field(6, 1),
        ]
        .concat();
        let raw = [field(1, &[field(1, b"creds"), field(13, &owner)].concat())].concat();
        let s = object(&[MAGIC.to_vec(), field(1, &tm), field(2, &raw)].concat()).unwrap();
        assert_eq!(
            s["metadata"]["ownerReferences"],
            json!([{"kind": "CronJob", "name": "tick", "uid": "u-1",
                "apiVersion": "batch/v1", "controller": true}])
        );
        // A field without a table is named, not dropped.
        let raw = [field(1, &field(17, b"managed"))].concat();
        let e = object(&[MAGIC.to_vec(), field(1, &tm), field(2, &raw)].concat()).unwrap_err();
        assert!(e.contains("ObjectMeta field 17 is not read"), "{e}");
        let tm = [field(1, b"apps/v1"), field(2, b"StatefulSet")].concat();
        let e = object(&[MAGIC.to_vec(), field(1, &tm), field(2, &[])].concat()).unwrap_err();
        assert!(e.contains("send JSON"), "{e}");
    }

    fn varint_field(n: u64, v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, n << 3);
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn a_deployment_keeps_zero_replicas_and_reads_quantities_and_int_or_strings() {
        let entry = |k: &[u8], v: &[u8]| [field(1, k), field(2, v)].concat();
        let limits = field(1, &entry(b"cpu", &field(1, b"250m")));
        let container = [
            field(1, b"app"),
            field(2, b"nginx"),
            field(8, &limits),
            varint_field(18, 0),
        ]
        .concat();
        let pod = [field(2, &container), field(3, b""), varint_field(11, 0)].concat();
        let template = field(2, &pod);
        let surge = [varint_field(1, 1), field(3, b"25%")].concat();
        let unavailable = [varint_field(1, 0), varint_field(2, 0)].concat();
        let strategy = field(2, &[field(1, &unavailable), field(2, &surge)].concat());
        let spec = [
            varint_field(1, 0),
            field(3, &template),
            field(4, &strategy),
            varint_field(5, 0),
        ]
        .concat();
        let raw = [
            field(1, &field(1, b"web")),
            field(2, &spec),
            field(3, &varint_field(2, 7)),
        ]
        .concat();
        let tm = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
        let d = object(&[MAGIC.to_vec(), field(1, &tm), field(2, &raw)].concat()).unwrap();
        assert_eq!(
            d["spec"],
            json!({
                "replicas": 0,
                "template": {"spec": {"containers": [
                    {"name": "app", "image": "nginx", "resources": {"limits": {"cpu": "250m"}}}
                ]}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%"}}
            }),
            "replicas 0 is kept (a pointer); minReadySeconds 0, tty and hostNetwork false, an empty restartPolicy and a zero IntOrString are absent; status is ignored"
        );
        assert!(d.get("status").is_none());
    }

    /// `kubectl create ingress web --rule=foo.com/=svc:8080,tls=cert
    /// --default-backend=fallback:http`: a rule's IngressRuleValue is inline in JSON.
    #[test]
    fn an_ingress_as_kubectl_create_sends_it() {
        let port = |p: Vec<u8>| field(2, &p);
        let service = |name: &[u8], p: Vec<u8>| field(4, &[field(1, name), port(p)].concat());
        let path = [
            field(1, b"/"),
            field(2, &service(b"svc", varint_field(2, 8080))),
            field(3, b"Exact"),
        ]
        .concat();
        let http = field(1, &field(1, &path));
        let rule = [field(1, b"foo.com"), field(2, &http)].concat();
        let tls = [field(1, b"foo.com"), field(2, b"cert")].concat();
        let spec = [
            field(1, &service(b"fallback", field(1, b"http"))),
            field(2, &tls),
            field(3, &rule),
        ]
        .concat();
        let raw = [field(1, &field(1, b"web")), field(2, &spec), field(3, &[])].concat();
        let tm = [field(1, b"networking.k8s.io/v1"), field(2, b"Ingress")].concat();
        let ing = object(&[MAGIC.to_vec(), field(1, &tm), field(2, &raw)].concat()).unwrap();
        assert_eq!(
            ing["spec"],
            json!({
                "defaultBackend": {"service": {"name": "fallback", "port": {"name": "http"}}},
                "tls": [{"hosts": ["foo.com"], "secretName": "cert"}],
                "rules": [{"host": "foo.com", "http": {"paths": [{"path": "/", "pathType": "Exact",
                    "backend": {"service": {"name": "svc", "port": {"number": 8080}}}}]}}]
            })
        );
    }

    #[test]
    fn other_kinds_and_garbage_are_refused() {
        let e = eviction(&eviction_bytes("ConfigMap")).unwrap_err();
        assert!(e.contains("only for policy/v1 Eviction"), "{e}");
        assert!(eviction(b"{\"kind\":\"Eviction\"}").is_err());
        let mut truncated = eviction_bytes("Eviction");
        truncated.truncate(truncated.len() - 3);
        assert!(eviction(&truncated).is_err());
        assert!(eviction(&[b'k', b'8', b's', 0, 0x0a, 0xff]).is_err());
        assert!(object(&truncated).is_err());
        assert!(eviction(&[
            b'k', b'8', b's', 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
        ])
        .is_err());
    }
}
