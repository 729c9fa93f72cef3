//! The library's front door, shaped like ZenML's `Client()`: open a home, look at the
//! active stack and its components.

use crate::error::{Error, Result};
use crate::home::Home;
use crate::model::ComponentType;
use crate::service::{ComponentView, Service, StackView};

/// An open strata home.
pub struct Client {
    service: Service,
}

/// A stack and the means to look at its components.
pub struct Stack<'a> {
    client: &'a Client,
    view: StackView,
    pub name: String,
}

impl Client {
    /// Opens the home in `STRATA_HOME`, or the default one, initialising it if new.
    pub fn open_default() -> Result<Client> {
        Self::open(Home::resolve(None)?)
    }

    pub fn open(home: Home) -> Result<Client> {
        Ok(Client {
            service: Service::open(home)?,
        })
    }

    /// Every operation, as the CLI has them.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The active stack (ZenML: `Client().active_stack`).
    pub fn active_stack(&self) -> Result<Stack<'_>> {
        let view = self.service.stack_describe(None)?;
        Ok(Stack {
            client: self,
            name: view.name.clone(),
            view,
        })
    }
}

impl Stack<'_> {
    /// The stack's component of type `t`, if it has one.
    pub fn component(&self, t: ComponentType) -> Result<Option<ComponentView>> {
        match self.view.components.iter().find(|m| m.component_type == t) {
            Some(m) => Ok(Some(
                self.client.service.component_describe(t, &m.name, false)?,
            )),
            None => Ok(None),
        }
    }

    pub fn orchestrator(&self) -> Result<ComponentView> {
        self.required(ComponentType::Orchestrator)
    }

    pub fn artifact_store(&self) -> Result<ComponentView> {
        self.required(ComponentType::ArtifactStore)
    }

    fn required(&self, t: ComponentType) -> Result<ComponentView> {
        self.component(t)?.ok_or_else(|| Error::Corrupt {
            key: format!("stacks/{}", self.name),
            reason: format!("the stack has no {}", t.label()),
        })
    }

    pub fn view(&self) -> &StackView {
        &self.view
    }
}

impl ComponentView {
    /// A configuration value (with defaults filled in), e.g. an artifact store's `path`.
    pub fn config(&self, key: &str) -> Option<String> {
        self.config
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.value.clone())
    }
}
