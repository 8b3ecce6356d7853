// The browser half of the SSR example: the client takes the server's snapshot with hydrate(), so
// its subscription resumes from that (epoch, version) — patches only, no snapshot frame — and
// React hydrates the server's markup.
import React from 'react';
import { hydrateRoot } from 'react-dom/client';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { createClient } from 'deltacast/client';
import { RealtimeProvider } from 'deltacast/react';
import { Board } from './board.js';

const state = window.__DELTACAST__;
const client = createClient({ url: `ws://${location.host}/ws`, pollUrl: `${location.origin}/deltacast` });
for (const [topic, snapshot] of Object.entries(state)) client.hydrate(topic, snapshot);
window.__client = client;
hydrateRoot(
  document.getElementById('root'),
  <QueryClientProvider client={new QueryClient()}>
    <RealtimeProvider client={client}>
      <Board />
    </RealtimeProvider>
  </QueryClientProvider>,
);
