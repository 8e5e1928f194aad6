/// Seconds elapsed since `start`.
public func seconds(since start: ContinuousClock.Instant) -> Double {
    toSeconds(ContinuousClock.now - start)
}

/// A duration in seconds.
public func toSeconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
