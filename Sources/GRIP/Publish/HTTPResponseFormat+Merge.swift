extension HTTPResponseFormat {
    /// The headers a response hold sends when this format is delivered (grip-spec §3.4 step 4): the hold's
    /// response headers less those the publish sets (names compared ignoring case), then the published
    /// headers in order. `Grip-*` headers are left out, and the headers a published `Grip-Expose-Headers`
    /// names are removed from the result (Pushpin's blacklist semantics in this direction, grip-spec §3.2).
    ///
    /// - Parameter original: the headers of the hold's response (``Instruct/Response/headers``).
    package func mergedHeaders(over original: [HeaderField]) -> [HeaderField] {
        let published = self.headers.filter { !$0.isGrip }
        let replaced = Set(published.map(\.name.lowercasedASCII))
        var hidden: Set<String> = []
        for field in self.headers where field.hasName("Grip-Expose-Headers") {
            for name in HeaderParameters.split(field.value) ?? [] {
                hidden.insert(name.lowercasedASCII)
            }
        }
        let merged = original.filter { !$0.isGrip && !replaced.contains($0.name.lowercasedASCII) } + published
        return merged.filter { !hidden.contains($0.name.lowercasedASCII) }
    }
}
