package tomlcheck_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/wso2img/wso2img/build/tomlcheck"
)

const name = "repository/conf/deployment.toml"

// apim is a deployment.toml in the shape WSO2 documents for API Manager 4.x.
const apim = `[server]
hostname = "am.example.com"
node_ip = "127.0.0.1"
server_role = "default"
offset = 0

[super_admin]
username = "admin"
password = "$env{ADMIN_PASSWORD}"
create_admin_account = true

[user_store]
type = "database_unique_id"

[database.apim_db]
type = "mysql"
url = "jdbc:mysql://mysql:3306/apim_db?useSSL=false&amp;allowPublicKeyRetrieval=true"
username = "$env{APIM_DB_USER}"
password = "$env{APIM_DB_PASSWORD}"
driver = "com.mysql.cj.jdbc.Driver"
pool_options.maxActive = 100
pool_options.validationQuery = "SELECT 1"

[database.shared_db]
type = "mysql"
url = "jdbc:mysql://mysql:3306/shared_db"

[keystore.tls]
file_name =  "wso2carbon.jks"
type =  "JKS"
password =  "$sys{keystore.password}"
alias =  "wso2carbon"
key_password =  "wso2carbon"

[truststore]
file_name = "client-truststore.p12"
type = "PKCS12"
password = "$env{TRUSTSTORE_PASSWORD}"

[[apim.gateway.environment]]
name = "Default"
type = "hybrid"
gateway_type = "Regular"
display_in_api_console = true
description = 'This is a hybrid gateway that handles both production and sandbox token traffic.'
show_as_token_endpoint_url = true
service_url = "https://localhost:${mgt.transport.https.port}/services/"
ws_endpoint = "ws://localhost:9099"
http_endpoint = "http://localhost:${http.nio.port}"

[apim.throttling]
enable_data_publishing = true
throttle_decision_endpoints = ["tcp://tm-1:5672", "tcp://tm-2:5672"]

[[apim.throttling.url_group]]
traffic_manager_urls = ["tcp://tm-1:9611"]
traffic_manager_auth_urls = ["ssl://tm-1:9711"]
type = "loadbalance"

[[apim.throttling.url_group]]
traffic_manager_urls = ["tcp://tm-2:9611"]
traffic_manager_auth_urls = ["ssl://tm-2:9711"]
type = "loadbalance"

[apim.cors]
allow_origins = "*"
allow_methods = ["GET","PUT","POST","DELETE","PATCH","OPTIONS"]
allow_headers = ["authorization","Access-Control-Allow-Origin","Content-Type","SOAPAction","apikey","Internal-Key"]
allow_credentials = false

[transport.https.properties]
proxyPort = 443

[[event_handler]]
name="userPostSelfRegistration"
subscriptions=["POST_ADD_USER"]

[oauth.grant_type.token_exchange]
enable = false
allow_refresh_tokens = true
iat_validity_period = "1h"

# comments, and a multi-line literal
[apim.devportal]
url = """https://devportal.example.com/devportal"""
enable_application_sharing = false
`

func TestCheckAcceptsWSO2Config(t *testing.T) {
	for _, tt := range []struct{ name, doc string }{
		{"API Manager", apim},
		{"CRLF line ends", strings.ReplaceAll(apim, "\n", "\r\n")},
		{"empty", ""},
		{"table after its sub-table", "[a.b]\nc = 1\n[a]\nd = 2\n"},
		{"array table elements with the same keys", "[[x]]\ny = 1\n[x.sub]\nz = 1\n[[x]]\ny = 2\n[x.sub]\nz = 2\n"},
		{"quoted key with a dot", "[x]\n\"a.b\" = 1\na.b = 2\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tomlcheck.Check(name, []byte(tt.doc)); err != nil {
				t.Fatalf("a valid file was refused: %v", err)
			}
		})
	}
}

func TestCheckRefuses(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		line, col int
		key       string
		first     int
		msg       string // the whole message after "name:"
	}{{
		name: "duplicate table",
		doc:  "[server]\nhostname = \"a\"\n[database.identity_db]\nurl = \"x\"\n\n[keystore.tls]\nalias = \"a\"\n\n[database.identity_db]\nurl = \"y\"\n",
		line: 9, col: 2, key: "[database.identity_db]", first: 3,
		msg: "9:2: [database.identity_db] defined twice, at lines 3 and 9",
	}, {
		name: "duplicate key",
		doc:  "[server]\nhostname = \"a\"\nport = 1\nhostname = \"b\"\n",
		line: 4, col: 1, key: "key server.hostname", first: 2,
		msg: "4:1: key server.hostname defined twice, at lines 2 and 4",
	}, {
		name: "duplicate dotted key",
		doc:  "[database.apim_db]\npool_options.maxActive = 100\nurl = \"x\"\npool_options.maxActive = 50\n",
		line: 4, key: "key database.apim_db.pool_options.maxActive", first: 2,
		msg: "defined twice, at lines 2 and 4",
	}, {
		name: "duplicate key in one array table element",
		doc:  "[[apim.throttling.url_group]]\ntype = \"a\"\n[[apim.throttling.url_group]]\ntype = \"b\"\ntype = \"c\"\n",
		line: 5, key: "key apim.throttling.url_group.type", first: 4,
		msg: "5:1: key apim.throttling.url_group.type defined twice, at lines 4 and 5",
	}, {
		name: "a table made by dotted keys, then by a header",
		doc:  "[a]\nb.c = 1\n[a.b]\nd = 2\n",
		line: 3, key: "[a.b]", first: 2,
		msg: "3:2: [a.b] defined twice, at lines 2 and 3 (table b already exists as defined by a dotted key)",
	}, {
		name: "an array of tables, then a table",
		doc:  "[[event_handler]]\nname = \"x\"\n[event_handler]\nname = \"y\"\n",
		line: 3, key: "[event_handler]", first: 1,
		msg: "[event_handler] defined twice, at lines 1 and 3 (",
	}, {
		name: "unquoted string",
		doc:  "[server]\nhostname = localhost\n",
		line: 2, col: 12,
		msg: "2:12: unexpected character U+006C 'l' at start of value",
	}, {
		name: "unquoted $env placeholder",
		doc:  "[super_admin]\nusername = \"admin\"\npassword = $env{ADMIN_PASSWORD}\n",
		line: 3, col: 12,
		msg: "3:12: unexpected character U+0024 '$' at start of value",
	}, {
		name: "unclosed string",
		doc:  "[server]\nhostname = \"a\nport = 1\n",
		line: 2, col: 14,
	}, {
		name: "unclosed table header",
		doc:  "[server\nhostname = \"a\"\n",
		line: 1, col: 8,
		msg: "1:8: expected ']' to close table name",
	}, {
		name: "invalid UTF-8 in a string",
		doc:  "[server]\nhostname = \"caf\xe9\"\n",
		line: 2, col: 16,
		msg: "invalid UTF-8",
	}, {
		name: "invalid UTF-8 in a comment",
		doc:  "# r\xe9sum\xe9\n[server]\n",
		line: 1, col: 4,
		msg: "invalid UTF-8 character in comment",
	}, {
		name: "byte order mark",
		doc:  "\xef\xbb\xbf[server]\n",
		line: 1, col: 1,
		msg: "byte order mark",
	}, {
		name: "integer too large",
		doc:  "[server]\noffset = 99999999999999999999\n",
		line: 2, col: 10,
		msg: "too large",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tomlcheck.Check(name, []byte(tt.doc))
			var te *tomlcheck.Error
			if !errors.As(err, &te) {
				t.Fatalf("got %v, want a *tomlcheck.Error", err)
			}
			if te.Line != tt.line || (tt.col != 0 && te.Column != tt.col) {
				t.Errorf("at %d:%d, want %d:%d (%v)", te.Line, te.Column, tt.line, tt.col, err)
			}
			if te.Key != tt.key || te.First != tt.first {
				t.Errorf("key %q first defined at line %d, want %q at %d", te.Key, te.First, tt.key, tt.first)
			}
			if !strings.HasPrefix(err.Error(), name+":") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestCheckContext(t *testing.T) {
	err := tomlcheck.Check(name, []byte("[server]\nhostname = localhost\n"))
	var te *tomlcheck.Error
	if !errors.As(err, &te) || !strings.Contains(te.Context, "hostname = localhost") || !strings.Contains(te.Context, "~") {
		t.Fatalf("no context that marks the spot: %q", te.Context)
	}
}

// FuzzCheck: Check agrees with the parser on every input, and what it reports points
// inside the document.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{apim, "[a]\nb=1\n[a]\n", "[a]\nb=1\nb=2\n", "a.b=1\n[a.b]\n", "[[x]]\ny=1\n[[x]]\ny=1\ny=2\n", "x = \"\xff\"", "\xef\xbb\xbfa=1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := tomlcheck.Check(name, data)
		var v map[string]any
		parsed := toml.Unmarshal(data, &v) == nil && !bytes.HasPrefix(data, []byte("\xef\xbb\xbf"))
		if parsed != (err == nil) {
			t.Fatalf("Check says %v, the parser says parsed=%v", err, parsed)
		}
		if err == nil {
			return
		}
		var te *tomlcheck.Error
		if !errors.As(err, &te) {
			t.Fatalf("not a *tomlcheck.Error: %v", err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		if te.Line < 1 || te.Line > lines || te.Column < 1 {
			t.Fatalf("position %d:%d outside a document of %d lines: %v", te.Line, te.Column, lines, err)
		}
		if te.Key != "" && (te.First < 1 || te.First >= te.Line) {
			t.Fatalf("%s first defined at line %d, after the error at line %d", te.Key, te.First, te.Line)
		}
	})
}
