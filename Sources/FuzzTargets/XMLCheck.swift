import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Whether a JUnit report parses as XML (a CI dashboard that cannot read it shows nothing).
enum XMLCheck {
    static func wellFormed(_ s: String) -> Bool {
        XMLParser(data: Data(s.utf8)).parse()
    }
}
