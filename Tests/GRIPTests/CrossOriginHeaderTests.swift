import GRIP
import Testing

@Suite struct CrossOriginHeaderTests {
    @Test func jsonpRouteOptions() throws {
        let route = try RouteTableTests.single(
            "*,aco,jsonp_mode=basic,jsonp_cb=cb,jsonp_body=b,jsonp_defcb=f localhost:80"
        )
        #expect(route.autoCrossOrigin)
        #expect(
            route.jsonp
                == JSONPConfig(mode: .basic, callbackParameter: "cb", bodyParameter: "b", defaultCallback: "f")
        )
        #expect(route.jsonp.defaultMethod == "POST")
        #expect(try RouteTableTests.single("* localhost:80").jsonp.defaultMethod == "GET")
        #expect(RouteTableTests.warning("*,jsonp_mode=odd localhost:80")?.contains("jsonp_mode must be set") == true)
    }

    @Test func exposeHeadersListEachNonSimpleNameOnce() {
        var response = [
            HeaderField(name: "Content-Type", value: "text/plain"), HeaderField(name: "X-A", value: "1"),
            HeaderField(name: "x-a", value: "2"), HeaderField(name: "Grip-Hold", value: "stream"),
            HeaderField(name: "Access-Control-Allow-Origin", value: "https://kept.example"),
            HeaderField(name: "ETag", value: "\"1\""),
        ]
        CrossOrigin.apply(requestHeaders: [HeaderField(name: "Origin", value: "https://o.example")], to: &response)
        let value = { (name: String) in response.filter { $0.hasName(name) }.map(\.value) }
        #expect(value("Access-Control-Expose-Headers") == ["X-A, ETag"])
        #expect(value("Access-Control-Allow-Origin") == ["https://kept.example"])
    }

    @Test func jsonpRequestOnlyForGETsWithACallback() throws {
        let config = JSONPConfig()
        #expect(try JSONPRequest.parse(method: "POST", originForm: "/a?callback=f", headers: [], config: config) == nil)
        #expect(try JSONPRequest.parse(method: "GET", originForm: "/a?x=1", headers: [], config: config) == nil)
        let request = try #require(
            try JSONPRequest.parse(
                method: "GET",
                originForm: "/a?x=%41&callback=f&_body=b%20c",
                headers: [HeaderField(name: "Host", value: "h"), HeaderField(name: "Accept", value: "text/html")],
                config: config
            )
        )
        #expect(request.originForm == "/a?x=%41")
        #expect(request.body == Array("b c".utf8))
        #expect(request.method == "GET")
        #expect(request.headers == [HeaderField(name: "Accept", value: "*/*"), HeaderField(name: "Host", value: "h")])
    }

    @Test func basicModeDropsOnlyTheFinalNewlineOfAStream() {
        var encoder = JSONPResponseEncoder(callback: "f", mode: .basic)
        var out = encoder.start(code: 200, reason: "OK", headers: []).prefix
        out += encoder.body(Array("a\n".utf8))
        out += encoder.body(Array("b\r\n".utf8))
        out += encoder.end()
        #expect(String(decoding: out, as: UTF8.self) == "/**/f(a\nb);\n")
    }

    @Test func extendedModeEscapesTheBodyAcrossPieces() {
        var encoder = JSONPResponseEncoder(callback: "f", mode: .extended)
        var out = encoder.start(code: 200, reason: "OK", headers: [HeaderField(name: "X", value: "\"")]).prefix
        let text = Array("é\"\n".utf8)
        out += encoder.body(Array(text.prefix(1)))
        out += encoder.body(Array(text.dropFirst()))
        out += encoder.end()
        #expect(
            String(decoding: out, as: UTF8.self)
                == #"/**/f({"code": 200, "reason": "OK", "headers": {"X":"\""}, "body": "é\"\n"});"# + "\n"
        )
    }
}
