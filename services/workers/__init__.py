"""The processes that run beside the API: the relay (store -> Kafka), the projector (Kafka ->
read models), rebuilds, the supervisor of `wbl run`'s children, heartbeats, audit
checkpoints."""
