package guest

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/antchfx/xmlquery"
)

// depthByTokens is what checkNesting stands in for: encoding/xml's token
// stream, counting elements and the deepest nesting.
func depthByTokens(data []byte) (elements, deepest int, ok bool) {
	d := xml.NewDecoder(bytes.NewReader(data))
	depth := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return elements, deepest, true
		}
		if err != nil {
			return 0, 0, false
		}
		switch tok.(type) {
		case xml.StartElement:
			elements++
			depth++
			deepest = max(deepest, depth)
		case xml.EndElement:
			depth--
		}
	}
}

// FuzzCheckNesting: on every document the parser accepts,
// checkNesting counts the same elements and refuses exactly the documents
// nested deeper than the limit.
func FuzzCheckNesting(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "libvirt-9.0", "*.xml"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data, 6)
		}
	}
	for _, s := range []string{
		`<a><!-- <b><c> --><b x="1>2" y='/>'/><![CDATA[<c><d>]]><?pi <e>?></a>`,
		`<!DOCTYPE a [<!ENTITY e "<x>"> <!-- > --> ]><a><b></b></a>`,
		`<a><b><c><d/></c></b></a>`,
		`<?xml version="1.0"?><a xmlns:f="urn:x"><f:b f:c="&quot;>"/></a>`,
	} {
		f.Add([]byte(s), 2)
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		if limit < 1 || limit > 100 {
			return
		}
		elements, deepest, ok := depthByTokens(data)
		if !ok {
			return // malformed: the parser after checkNesting refuses it
		}
		if _, err := xmlquery.Parse(bytes.NewReader(data)); err != nil {
			return // refused by the parser all the same
		}
		got, err := checkNesting(data, limit)
		if refused := err != nil; refused != (deepest > limit) {
			t.Fatalf("limit %d, nesting %d: checkNesting refused=%v (%v)", limit, deepest, refused, err)
		}
		if err == nil && got != elements {
			t.Fatalf("checkNesting counted %d elements, encoding/xml %d", got, elements)
		}
	})
}
