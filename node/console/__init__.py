"""The regulator's and banks' console (issue 20): a web application that talks to one node's
JSON-RPC with one institution's credentials and shows what that institution may see
(docs/adr/0036). `node.console.common` holds what the application and its pages share."""
