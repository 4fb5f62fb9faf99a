//! Test destination of ABI 0.2.0 that does nothing: every event, alone or in a batch, gets a
//! receipt naming its key, without revealing a value. The floor of a batch call's cost (the
//! plugin-host bench), and a 0.2.0 component in the host's tests.

wit_bindgen::generate!({
    world: "destination",
    path: "../../../wit/0.2.0",
    generate_all,
});

struct Noop;

impl Guest for Noop {
    fn validate() -> Result<(), PluginError> {
        Ok(())
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        Ok(Receipt {
            location: event.key,
            destination_version: None,
            unchanged: false,
            fingerprint: None,
        })
    }

    fn deliver_batch(events: Vec<ItemEvent>) -> Vec<Result<Receipt, PluginError>> {
        events.into_iter().map(Self::deliver).collect()
    }

    fn read_back(_item: ItemRef) -> Result<Found, PluginError> {
        Ok(Found::Absent)
    }
}

export!(Noop);
