import GRIP
import Testing

@Suite struct INIDocumentTests {
    @Test func sectionsKeysAndComments() {
        let document = INIDocument(
            parsing: """
                ; a comment
                # another comment
                top=level

                [global]
                  rundir = run  
                include={libdir}/internal.conf
                [proxy]
                sig_key="quoted value"
                empty=
                debug=false
                debug=true
                """
        )
        #expect(document.warnings.isEmpty)
        #expect(document.sections == ["global", "proxy"])
        #expect(document.value(section: "", key: "top")?.value == "level")
        #expect(document.value(section: "global", key: "rundir")?.value == "run")
        #expect(document.value(section: "global", key: "rundir")?.line == 6)
        #expect(document.value(section: "global", key: "include")?.value == "{libdir}/internal.conf")
        #expect(document.value(section: "proxy", key: "sig_key")?.value == "quoted value")
        #expect(document.value(section: "proxy", key: "empty")?.value == "")
        #expect(document.value(section: "proxy", key: "debug")?.value == "true")
        #expect(document.value(section: "proxy", key: "missing") == nil)
    }

    @Test func malformedLinesAreWarnedAndSkipped() {
        let document = INIDocument(
            parsing: """
                [proxy
                just some words
                =value
                [handler]
                ok=1
                """
        )
        #expect(document.warnings.count == 3)
        #expect(document.warnings[0].hasPrefix("line 1:"))
        #expect(document.warnings[1].hasPrefix("line 2:"))
        #expect(document.warnings[2].hasPrefix("line 3:"))
        #expect(document.entries.count == 1)
        #expect(document.value(section: "handler", key: "ok")?.line == 5)
    }

    @Test func inlineSemicolonComments() {
        let document = INIDocument(
            parsing: """
                [runner]
                http_port=7999 ; the client port
                [proxy]
                sig_key="a;b" ; quoted
                sig_iss=x#y
                """
        )
        #expect(document.value(section: "runner", key: "http_port")?.value == "7999")
        #expect(document.value(section: "proxy", key: "sig_key")?.value == "a;b")
        #expect(document.value(section: "proxy", key: "sig_iss")?.value == "x#y")
    }

    @Test func repeatedSectionsMerge() {
        // The conformance suite appends P8_EXTRA_CONFIG to its generated file, repeating section headers.
        let document = INIDocument(parsing: "[proxy]\na=1\n[handler]\nb=2\n[proxy]\na=3\nc=4")
        #expect(document.sections == ["proxy", "handler"])
        #expect(document.value(section: "proxy", key: "a")?.value == "3")
        #expect(document.value(section: "proxy", key: "c")?.value == "4")
    }

    @Test func crlfLineEndings() {
        let document = INIDocument(parsing: "[a]\r\nb=c\r\nd=e\r\n")
        #expect(document.warnings.isEmpty)
        #expect(document.value(section: "a", key: "b")?.value == "c")
        #expect(document.value(section: "a", key: "d")?.line == 3)
    }
}
