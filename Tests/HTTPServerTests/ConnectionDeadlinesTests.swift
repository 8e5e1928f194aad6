import Testing

@testable import HTTPServer

/// The decisions behind the connection watchdog and the framing check, without sockets.
@Suite("Connection deadlines, shedding and framing")
struct ConnectionDeadlinesTests {
    let start = ContinuousClock.now
    let timeouts = ConnectionDeadlines.Timeouts(header: .seconds(10), idle: .seconds(5))

    @Test func aNewConnectionHasTheHeaderTimeoutForItsRequestLineAndHeadersTogether() {
        var deadlines = ConnectionDeadlines(openedAt: start, timeouts: timeouts)
        #expect(deadlines.phase == .awaitingRequest)
        #expect(deadlines.isWaiting)
        deadlines.requestLineArrived(at: start + .seconds(9))
        // The request line came late: the headers get no fresh ten seconds.
        #expect(deadlines.phase == .readingHeaders)
        #expect(!deadlines.isOverdue(at: start + .milliseconds(9_999)))
        #expect(deadlines.isOverdue(at: start + .seconds(10)))
    }

    @Test func noDeadlineWhileARequestIsHandledThenTheIdleClockStartsAtTheAnswer() {
        var deadlines = ConnectionDeadlines(openedAt: start, timeouts: timeouts)
        deadlines.requestLineArrived(at: start)
        deadlines.headersArrived()
        #expect(deadlines.phase == .handling)
        #expect(!deadlines.isWaiting)
        #expect(!deadlines.isOverdue(at: start + .seconds(3_600)))
        deadlines.requestCompleted(at: start + .seconds(100))
        #expect(deadlines.answered == 1)
        #expect(deadlines.waitingSince == start + .seconds(100))
        #expect(!deadlines.isOverdue(at: start + .milliseconds(104_999)))
        #expect(deadlines.isOverdue(at: start + .seconds(105)))
    }

    @Test func onAKeptAliveConnectionTheHeaderDeadlineStartsAtTheRequestLine() {
        var deadlines = ConnectionDeadlines(openedAt: start, timeouts: timeouts)
        deadlines.requestLineArrived(at: start)
        deadlines.headersArrived()
        deadlines.requestCompleted(at: start + .seconds(1))
        deadlines.requestLineArrived(at: start + .seconds(4))
        #expect(deadlines.isWaiting)
        #expect(!deadlines.isOverdue(at: start + .milliseconds(13_999)))
        #expect(deadlines.isOverdue(at: start + .seconds(14)))
    }

    @Test func aClosingConnectionIsClosedOnceAndNothingRevivesIt() {
        var deadlines = ConnectionDeadlines(openedAt: start, timeouts: timeouts)
        let first = deadlines.close()
        let second = deadlines.close()
        #expect(first)
        #expect(!second)
        deadlines.requestLineArrived(at: start)
        deadlines.headersArrived()
        deadlines.requestCompleted(at: start)
        #expect(deadlines.phase == .closing)
        #expect(!deadlines.isWaiting)
        #expect(!deadlines.isOverdue(at: start + .seconds(3_600)))
    }

    @Test func sheddingStartsPastTheLimitAndTakesTheLongestWaitingInABatch() {
        #expect(ConnectionShedding.count(open: 100, limit: 100, batch: 4) == 0)
        #expect(ConnectionShedding.count(open: 101, limit: 100, batch: 4) == 4)
        #expect(ConnectionShedding.count(open: 101, limit: 100, batch: 0) == 1)
        #expect(ConnectionShedding.count(open: 110, limit: 100, batch: 1) == 10)
        let since = [start + .seconds(3), start + .seconds(1), start + .seconds(2), start]
        #expect(ConnectionShedding.oldest(since, count: 2) == [3, 1])
        #expect(ConnectionShedding.oldest(since, count: 9) == [3, 1, 2, 0])
        #expect(ConnectionShedding.oldest(since, count: 0).isEmpty)
    }

    @Test func theConnectionBudgetShrinksToFitTheOpenFileLimit() {
        let roomy = ConnectionBudget(maxConnections: 10_000, openFileLimit: 1_048_576)
        #expect(roomy.kept == 10_000)
        #expect(roomy.hardCap == 11_250)
        #expect(roomy.listenBacklog == 10_000)
        let tight = ConnectionBudget(maxConnections: 10_000, openFileLimit: 1_024)
        #expect(tight.kept == 672)
        #expect(tight.hardCap == 756)
        #expect(ConnectionBudget(maxConnections: 20, openFileLimit: 20_000).hardCap == 36)
        #expect(ConnectionBudget(maxConnections: 20, openFileLimit: 20_000).listenBacklog == 128)
    }

    @Test func framingIsRefusedWhenTwoParsersCouldReadItDifferently() {
        func status(_ headers: [(String, String)]) -> Int? {
            RequestFraming.refusal(HTTPHeaders(headers))?.status
        }
        #expect(status([]) == nil)
        #expect(status([("Content-Length", "5")]) == nil)
        #expect(status([("Content-Length", "5"), ("content-length", " 5")]) == nil)
        #expect(status([("Transfer-Encoding", "Chunked")]) == nil)
        #expect(status([("Content-Length", "5"), ("Content-Length", "6")]) == 400)
        #expect(status([("Transfer-Encoding", "chunked"), ("Content-Length", "5")]) == 400)
        #expect(status([("Transfer-Encoding", "gzip"), ("Content-Length", "5")]) == 400)
        #expect(status([("Transfer-Encoding", "gzip")]) == 501)
        #expect(status([("Transfer-Encoding", "gzip, chunked")]) == 501)
        #expect(status([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")]) == 501)
        #expect(status([("Transfer-Encoding", "chunked,")]) == 501)
        #expect(status([("Transfer-Encoding", "")]) == 501)
        let refusal = RequestFraming.refusal(HTTPHeaders([("Transfer-Encoding", "gzip")]))
        #expect(refusal.map { $0.completing(HTTPRefusal.plainText($0)) }?.headers["Connection"] == "close")
        #expect(refusal.map { String(decoding: jsonRefusals($0).body, as: UTF8.self) }?.contains("\"not_implemented\"") == true)
    }
}
