//! Kubernetes' Priority admission: a new pod's `priorityClassName` (or the cluster's
//! global default class) becomes its `spec.priority` and `preemptionPolicy`; at most one
//! PriorityClass is the global default; the system classes exist from the first start.
//! The decisions are pure functions ([`resolve`], [`second_default`]); the store reads
//! around them are the `Api` methods at the end.

use super::*;
use skiff_api::pod::PodSpec;
use skiff_api::scheduling::{PriorityClass, SYSTEM_CLASSES};

/// The priority of a pod that names no class when no class is the default.
const NO_CLASS_PRIORITY: i32 = 0;
const DEFAULT_POLICY: &str = "PreemptLowerPriority";

/// Fills a new pod's priority from `class` (the one it names, or the default class when
/// it names none; `None` when neither exists). A priority or preemption policy the pod
/// gives itself must be the one the class gives, as Kubernetes requires.
pub(super) fn resolve(
    pod_name: &str,
    spec: &mut PodSpec,
    class: Option<&PriorityClass>,
) -> Result<(), ApiError> {
    let forbidden = |what: String| {
        err(
            ErrorCode::Forbidden,
            format!("pods {pod_name:?} is forbidden: {what}"),
        )
    };
    let (value, policy) = match class {
        Some(c) => (
            c.value,
            c.preemption_policy.as_deref().unwrap_or(DEFAULT_POLICY),
        ),
        None => (NO_CLASS_PRIORITY, DEFAULT_POLICY),
    };
    if let Some(p) = spec.priority.filter(|p| *p != value) {
        return Err(forbidden(format!("the integer value of priority ({p}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name")));
    }
    if let Some(p) = spec.preemption_policy.as_deref().filter(|p| *p != policy) {
        return Err(forbidden(format!("the string value of PreemptionPolicy ({p}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name")));
    }
    if let (None, Some(c)) = (&spec.priority_class_name, class) {
        spec.priority_class_name = Some(c.metadata.name().to_string());
    }
    spec.priority = Some(value);
    spec.preemption_policy = Some(policy.to_string());
    Ok(())
}

/// The default class among `classes`: with several (written before the rule held), the
/// one of lowest value, as Kubernetes picks.
pub(super) fn default_class(classes: &[PriorityClass]) -> Option<&PriorityClass> {
    classes
        .iter()
        .filter(|c| c.is_default())
        .min_by_key(|c| c.value)
}

/// Another class already the default, when `pc` wants to be it.
pub(super) fn second_default<'a>(
    pc: &PriorityClass,
    classes: &'a [PriorityClass],
) -> Option<&'a PriorityClass> {
    if !pc.is_default() {
        return None;
    }
    classes
        .iter()
        .find(|c| c.is_default() && c.metadata.name() != pc.metadata.name())
}

impl<S: Store> Api<S> {
    fn priority_classes(&self) -> Result<Vec<PriorityClass>, ApiError> {
        self.stored_of(Kind::PriorityClass, |o| match o {
            Object::PriorityClass(pc) => Some(pc),
            _ => None,
        })
    }

    /// Admission of a write: a new pod's priority, a class's claim to be the default.
    /// `current` is the stored object of an update (none on create).
    pub(super) fn admit_priority(
        &self,
        o: &mut Object,
        current: Option<&Object>,
    ) -> Result<(), ApiError> {
        match (o, current) {
            (Object::Pod(pod), None) => {
                let name = pod.metadata.name().to_string();
                let class = match &pod.spec.priority_class_name {
                    Some(pc) => {
                        let key = ObjectKey {
                            kind: Kind::PriorityClass,
                            namespace: String::new(),
                            name: pc.clone(),
                        };
                        match self.store.get(&key).map_err(store_err)? {
                            Some(s) => match stored_object(&s)? {
                                Object::PriorityClass(c) => Some(c),
                                _ => None,
                            },
                            None => {
                                return Err(err(
                                    ErrorCode::Forbidden,
                                    format!("pods {name:?} is forbidden: no PriorityClass with name {pc} was found"),
                                ))
                            }
                        }
                    }
                    None => default_class(&self.priority_classes()?).cloned(),
                };
                resolve(&name, &mut pod.spec, class.as_ref())
            }
            (Object::PriorityClass(pc), _) if pc.is_default() => {
                match second_default(pc, &self.priority_classes()?) {
                    Some(other) => Err(err(
                        ErrorCode::Forbidden,
                        format!(
                            "priorityclasses.scheduling.k8s.io {:?} is forbidden: PriorityClass {} is already marked as default. Only one default can exist",
                            pc.metadata.name(),
                            other.metadata.name()
                        ),
                    )),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Creates the system classes that are missing (Kubernetes' apiserver does at start).
    pub(super) async fn bootstrap_priority_classes(&self) -> Result<(), ApiError> {
        for (name, value, description) in SYSTEM_CLASSES {
            let key = ObjectKey {
                kind: Kind::PriorityClass,
                namespace: String::new(),
                name: name.into(),
            };
            if self.store.get(&key).map_err(store_err)?.is_none() {
                let pc = PriorityClass::system(name, value, description);
                self.create(Object::PriorityClass(pc)).await?;
            }
        }
        Ok(())
    }
}

/// A write that replaces a pod keeps what admission gave it when the new text leaves it
/// out (a manifest applied again has no `priority`): it may not change anyway.
pub(super) fn carry_priority(current: &Object, next: &mut Object) {
    if let (Object::Pod(c), Object::Pod(n)) = (current, next) {
        let (c, n) = (&c.spec, &mut n.spec);
        if n.priority.is_none() {
            n.priority = c.priority;
        }
        if n.priority_class_name.is_none() {
            n.priority_class_name.clone_from(&c.priority_class_name);
        }
        if n.preemption_policy.is_none() {
            n.preemption_policy.clone_from(&c.preemption_policy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, value: i32, default: bool, policy: &str) -> PriorityClass {
        let mut c = PriorityClass {
            value,
            global_default: Some(default),
            preemption_policy: Some(policy.into()),
            ..Default::default()
        };
        c.metadata.name = Some(name.into());
        c
    }

    #[test]
    fn a_pod_gets_its_class_priority_or_the_defaults_or_zero() {
        let high = class("high", 1000, false, "Never");
        let mut spec = PodSpec {
            priority_class_name: Some("high".into()),
            ..Default::default()
        };
        resolve("p", &mut spec, Some(&high)).unwrap();
        assert_eq!(spec.priority, Some(1000));
        assert_eq!(spec.preemption_policy.as_deref(), Some("Never"));

        let mut spec = PodSpec::default();
        let dflt = class("normal", 10, true, "PreemptLowerPriority");
        resolve("p", &mut spec, Some(&dflt)).unwrap();
        assert_eq!(spec.priority_class_name.as_deref(), Some("normal"));
        assert_eq!(spec.priority, Some(10));

        let mut spec = PodSpec::default();
        resolve("p", &mut spec, None).unwrap();
        assert_eq!(
            (
                spec.priority,
                spec.priority_class_name,
                spec.preemption_policy.as_deref()
            ),
            (Some(0), None, Some("PreemptLowerPriority"))
        );
    }

    #[test]
    fn a_pod_may_not_claim_a_priority_its_class_does_not_give() {
        let high = class("high", 1000, false, "PreemptLowerPriority");
        let mut spec = PodSpec {
            priority_class_name: Some("high".into()),
            priority: Some(5),
            ..Default::default()
        };
        let e = resolve("p", &mut spec, Some(&high)).unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden);
        assert!(e.message.contains("the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000"), "{}", e.message);
        // Its own value, given again, is fine (an object read back and created anew).
        spec.priority = Some(1000);
        resolve("p", &mut spec, Some(&high)).unwrap();
        let mut spec = PodSpec {
            preemption_policy: Some("Never".into()),
            ..Default::default()
        };
        let e = resolve("p", &mut spec, None).unwrap_err();
        assert!(
            e.message.contains("PreemptionPolicy (Never)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn one_default_class_and_the_lowest_if_several_slipped_in() {
        let all = vec![
            class("a", 100, true, "Never"),
            class("b", 50, true, "Never"),
            class("c", 10, false, "Never"),
        ];
        assert_eq!(default_class(&all).unwrap().metadata.name(), "b");
        let new = class("d", 1, true, "Never");
        assert!(second_default(&new, &all).is_some());
        assert!(second_default(&class("d", 1, false, "Never"), &all).is_none());
        // A default class written again is not its own rival.
        let only = vec![class("a", 100, true, "Never")];
        assert!(second_default(&class("a", 100, true, "Never"), &only).is_none());
    }
}
