import Foundation
import Testing

/// Comments in the sources and tests may point to documents; every one they name must be in the repository.
@Suite struct DocumentReferencesTests {
    static let top = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // GatewayUnitTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository top

    /// Paths (relative to the top) of the repository's files ending in `suffix`, outside build and VCS folders.
    static func files(endingIn suffix: String) -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: top.path)
        var found: [String] = []
        while let path = enumerator?.nextObject() as? String {
            if path.hasPrefix(".build") || path.hasPrefix(".git") || path.hasPrefix(".data") {
                enumerator?.skipDescendants()
                continue
            }
            if path.hasSuffix(suffix) { found.append(path) }
        }
        return found
    }

    /// The `NAME.md` / `folder/NAME.md` words of a text.
    static func markdownNames(in text: String) -> [String] {
        let pattern = /[A-Za-z0-9_\-\/]*[A-Za-z0-9_\-]\.md\b/
        return text.matches(of: pattern).map { String($0.output) }
    }

    @Test func everyDocumentASourceCommentNamesExists() throws {
        let documents = Self.files(endingIn: ".md")
        #expect(documents.contains("README.md"))
        // This file's own examples are not references.
        let own = "Tests/GatewayUnitTests/" + URL(fileURLWithPath: #filePath).lastPathComponent
        let swiftFiles = Self.files(endingIn: ".swift").filter {
            ($0.hasPrefix("Sources/") || $0.hasPrefix("Tests/")) && $0 != own
        }
        #expect(swiftFiles.count > 20)
        var missing: [String] = []
        for file in swiftFiles {
            let text = try String(contentsOf: Self.top.appendingPathComponent(file), encoding: .utf8)
            for name in Self.markdownNames(in: text) {
                let exists =
                    name.contains("/")
                    ? documents.contains { $0 == name || $0.hasSuffix("/" + name) }
                    : documents.contains { ($0 as NSString).lastPathComponent == name }
                if !exists { missing.append("\(file): \(name)") }
            }
        }
        #expect(missing.isEmpty, "documents named in comments but not in the repository: \(missing)")
    }

    @Test func documentNamesAreFoundInComments() {
        #expect(
            Self.markdownNames(in: "/// as docs/DEPLOYMENT.md and NOTES.md say; not README.mdx") == [
                "docs/DEPLOYMENT.md", "NOTES.md",
            ])
    }
}
