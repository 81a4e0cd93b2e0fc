// Our GraphiQL page: asks for the API key once per tab, then runs GraphiQL with it.
//
// The key lives in this tab's sessionStorage only (never in a URL, a cookie or localStorage),
// so a reload keeps it and closing the tab forgets it. It reaches the server through the
// fetcher: `Authorization: Bearer …` on POST /graphql, and the same in the websocket's
// `connection_init` payload for subscriptions (browsers cannot set headers on a websocket).
// GraphiQL keeps its tabs and queries in localStorage, but never the key, which does not go
// through its headers editor.
'use strict';

(function () {
  const STORAGE_KEY = 'ledger.graphiql.apiKey';
  const DEFAULT_QUERY = [
    '# The ledger\'s GraphQL API, with the key you gave sent on every request.',
    '# Ctrl-Enter runs the query; the Docs pane (top left) lists the schema.',
    '{',
    '  payments(first: 10) {',
    '    edges { node { id orderId status amount currency } }',
    '  }',
    '}',
    '',
  ].join('\n');

  const form = document.getElementById('key-form');
  const input = document.getElementById('api-key');
  const error = document.getElementById('key-error');
  const ide = document.getElementById('ide');

  function storedKey() {
    try {
      return sessionStorage.getItem(STORAGE_KEY);
    } catch (_) {
      return null;
    }
  }

  // Asks the server whether the key works before keeping it: `{ __typename }` is answered
  // for any valid key, whatever its role. Returns null, or why the key was refused.
  async function refusal(key) {
    let response;
    try {
      response = await fetch('/graphql', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + key },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
    } catch (failure) {
      return 'the server could not be reached: ' + failure.message;
    }
    if (response.ok) {
      return null;
    }
    try {
      const body = await response.json();
      return body.errors[0].message;
    } catch (_) {
      return 'the server answered ' + response.status;
    }
  }

  function askForKey() {
    ide.hidden = true;
    form.hidden = false;
    input.focus();
  }

  function openGraphiQL(key) {
    form.hidden = true;
    ide.hidden = false;
    const authorization = 'Bearer ' + key;
    const websocket = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const fetcher = GraphiQL.createFetcher({
      url: location.origin + '/graphql',
      headers: { Authorization: authorization },
      subscriptionUrl: websocket + '//' + location.host + '/graphql/ws',
      wsConnectionParams: { Authorization: authorization },
    });
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, { fetcher: fetcher, defaultQuery: DEFAULT_QUERY }),
    );
  }

  form.addEventListener('submit', async function (event) {
    event.preventDefault();
    const key = input.value.trim();
    error.textContent = '';
    const refused = await refusal(key);
    if (refused !== null) {
      error.textContent = 'That key was refused: ' + refused;
      return;
    }
    input.value = '';
    sessionStorage.setItem(STORAGE_KEY, key);
    openGraphiQL(key);
  });

  // Reloading drops GraphiQL and every websocket it opened along with the key.
  document.getElementById('forget-key').addEventListener('click', function () {
    sessionStorage.removeItem(STORAGE_KEY);
    location.reload();
  });

  const key = storedKey();
  if (key) {
    openGraphiQL(key);
  } else {
    askForKey();
  }
})();
