import Testing

@testable import Postgres

@Suite("PoolStateMachine")
struct PoolStateMachineTests {
    typealias Machine = PoolStateMachine<String, String>

    @Test func opensUpToCapacityThenQueuesWaiters() {
        var machine = Machine(capacity: 2)
        guard case .open = machine.acquire() else {
            Issue.record("expected open")
            return
        }
        guard case .open = machine.acquire() else {
            Issue.record("expected open")
            return
        }
        guard case .wait = machine.acquire() else {
            Issue.record("expected wait")
            return
        }
        machine.enqueue(id: 1, waiter: "w1")
        #expect(machine.inUse == 2)
        #expect(machine.waiting == 1)

        guard case .handOver(let connection, let waiter) = machine.release("c1") else {
            Issue.record("expected hand-over")
            return
        }
        #expect(connection == "c1" && waiter == "w1")
        #expect(machine.inUse == 2)
        guard case .stored = machine.release("c1") else {
            Issue.record("expected stored")
            return
        }
        #expect(machine.inUse == 1)
        guard case .use(let reused) = machine.acquire() else {
            Issue.record("expected reuse")
            return
        }
        #expect(reused == "c1")
        #expect(machine.opened == 2)
    }

    @Test func removedWaiterIsNotServed() {
        var machine = Machine(capacity: 1)
        _ = machine.acquire()
        machine.enqueue(id: 1, waiter: "w1")
        machine.enqueue(id: 2, waiter: "w2")
        #expect(machine.removeWaiter(id: 1) == "w1")
        #expect(machine.removeWaiter(id: 1) == nil)
        guard case .handOver(_, let waiter) = machine.release("c") else {
            Issue.record("expected hand-over")
            return
        }
        #expect(waiter == "w2")
    }

    @Test func closeFailsWaitersAndClosesConnectionsReturnedLater() {
        var machine = Machine(capacity: 1)
        _ = machine.acquire()
        guard case .wait = machine.acquire() else {
            Issue.record("expected wait")
            return
        }
        machine.enqueue(id: 9, waiter: "w")
        let closed = machine.close()
        #expect(closed.idle.isEmpty)
        #expect(closed.waiters == ["w"])
        guard case .close(let late) = machine.release("busy") else {
            Issue.record("expected close")
            return
        }
        #expect(late == "busy")
        #expect(machine.opened == 0)
        guard case .closed = machine.acquire() else {
            Issue.record("expected closed")
            return
        }
    }

    @Test func closeHandsBackIdleConnections() {
        var machine = Machine(capacity: 3)
        _ = machine.acquire()
        _ = machine.release("a")
        let closed = machine.close()
        #expect(closed.idle == ["a"])
        #expect(machine.opened == 0)
        #expect(machine.inUse == 0)
    }
}
