// Boots GraphiQL from the vendored UMD builds (globals React, ReactDOM, GraphiQL).
// Configuration comes from the page's #ide-config JSON so this file stays static
// and cacheable, and the page needs no inline script (the CSP forbids one).
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("ide-config").textContent);
  var endpoint = new URL(config.endpoint, window.location.href);
  // Subscriptions speak graphql-transport-ws on the same path; GraphiQL sends
  // the headers editor's content as the connection_init payload, which is
  // where the gateway reads a browser's API key.
  var socket = new URL(endpoint.href);
  socket.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({
    url: endpoint.href,
    subscriptionUrl: socket.href,
  });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: config.defaultHeaders,
      isHeadersEditorEnabled: true,
      // Open on the headers tab: nothing works until the key is pasted there.
      defaultEditorToolsVisibility: "headers",
      // An API key is a secret: keep it out of localStorage unless the user
      // opts in from GraphiQL's settings dialog.
      shouldPersistHeaders: false,
    })
  );
})();
