//! Kubernetes' DefaultIngressClass admission: a new Ingress that names no class (neither
//! `spec.ingressClassName` nor the older `kubernetes.io/ingress.class` annotation) gets the
//! default IngressClass, the newest if several are marked.

use super::*;
use skiff_api::ingress_class::IngressClass;

/// The default class among `classes`: with several, the newest (as Kubernetes picks).
pub(super) fn default_class(classes: &[IngressClass]) -> Option<&IngressClass> {
    super::storage::newest(classes.iter().filter(|c| c.is_default()), |c| &c.metadata)
}

impl<S: Store> Api<S> {
    /// Admission of a new Ingress.
    pub(super) fn admit_ingress_class(&self, o: &mut Object) -> Result<(), ApiError> {
        let Object::Ingress(i) = o else {
            return Ok(());
        };
        if i.class().is_some() {
            return Ok(());
        }
        let classes = self.stored_of(Kind::IngressClass, |o| match o {
            Object::IngressClass(c) => Some(c),
            _ => None,
        })?;
        if let Some(d) = default_class(&classes) {
            i.spec.ingress_class_name = Some(d.metadata.name().to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, created: &str, default: bool) -> IngressClass {
        let mut c = IngressClass::default();
        c.metadata.name = Some(name.into());
        c.metadata.creation_timestamp = Some(created.into());
        if default {
            c.metadata.annotations.insert(
                skiff_api::ingress_class::DEFAULT_CLASS_ANNOTATION.into(),
                "true".into(),
            );
        }
        c
    }

    #[test]
    fn the_newest_marked_class_is_the_default() {
        let classes = [
            class("old", "2026-01-01T00:00:00Z", true),
            class("new", "2026-06-01T00:00:00Z", true),
            class("newest-unmarked", "2026-12-01T00:00:00Z", false),
        ];
        assert_eq!(default_class(&classes).unwrap().metadata.name(), "new");
        assert!(default_class(&classes[2..]).is_none());
    }
}
