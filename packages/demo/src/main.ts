// Parley's web demo: a small chat client built on @parley/client, served by the server at /demo/. Sign in as
// a demo user (the server mints the token: docs/DEMO.md), then chat: conversations with unread and mention
// badges, history that loads older pages as you scroll up, optimistic sends, threads, edits, deletes,
// reactions, typing, presence, search and read receipts, all live. No UI framework: a few DOM helpers.
import {
  ParleyClient,
  ParleyError,
  type AttachmentView,
  type Conversation,
  type Message,
  type OutgoingMessage,
  type ParleyEvent,
  type RealtimeClient,
} from '@parley/client';
import './style.css';

type Child = Node | string | null | undefined | false;
type Prop = string | number | boolean | null | undefined | ((event: Event) => void);

/** An element with attributes (`on…` are listeners) and children. */
function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Record<string, Prop> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === 'className') element.className = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children)
    if (child !== null && child !== undefined && child !== false) element.append(child);
  return element;
}

const app = document.querySelector<HTMLDivElement>('#app') as HTMLDivElement;
const REACTIONS = ['👍', '❤️', '😂', '🎉'];
const SESSION_KEY = 'parley-demo-session';

interface Session {
  token: string;
  expires_at: string;
  user_id: string;
}

async function requestSession(userId: string): Promise<Session> {
  const response = await fetch('/demo/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: userId }),
  });
  if (!response.ok) throw new Error(`sign-in failed: HTTP ${response.status}`);
  const session = (await response.json()) as Session;
  // Per tab: two tabs (or windows) can be two users.
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

function savedSession(): Session | null {
  const raw = sessionStorage.getItem(SESSION_KEY);
  if (raw === null) return null;
  const session = JSON.parse(raw) as Session;
  return Date.parse(session.expires_at) - Date.now() > 60_000 ? session : null;
}

async function showSignIn(): Promise<void> {
  const response = await fetch('/demo/users');
  const { users } = (await response.json()) as { users: { id: string; name: string }[] };
  app.replaceChildren(
    h(
      'main',
      { className: 'sign-in' },
      h('h1', {}, 'Parley demo'),
      h('p', {}, 'Sign in as one of the demo users. Open another window as someone else to chat live.'),
      h(
        'div',
        { className: 'users' },
        ...users.map((user) =>
          h(
            'button',
            {
              'data-testid': `sign-in-${user.id}`,
              onClick: () => void requestSession(user.id).then((session) => new Chat(session).start()),
            },
            h('span', { className: 'avatar' }, user.name.slice(0, 1)),
            user.name,
          ),
        ),
      ),
    ),
  );
}

class Chat {
  readonly me: string;
  readonly client: ParleyClient;
  readonly live: RealtimeClient;
  session: Session;
  names = new Map<string, string>();
  conversations = new Map<string, Conversation>();
  directNames = new Map<string, string>();
  openId: string | null = null;
  messages: Message[] = [];
  hasMoreBefore = false;
  loadingOlder = false;
  pending: OutgoingMessage[] = [];
  thread: { root: Message; replies: Message[] } | null = null;
  typing = new Map<string, Map<string, ReturnType<typeof setTimeout>>>();
  online = new Set<string>();
  receipts: string[] = [];
  editing: string | null = null;
  lastTypingSent = 0;
  readTimer: ReturnType<typeof setTimeout> | null = null;
  receiptsTimer: ReturnType<typeof setInterval> | null = null;

  // The parts of the page that are redrawn.
  list = h('ul', { className: 'conversations', 'data-testid': 'conversations' });
  header = h('header', { className: 'conversation-header' });
  timeline = h('div', { className: 'timeline', 'data-testid': 'timeline' });
  typingLine = h('div', { className: 'typing', 'data-testid': 'typing' });
  receiptsLine = h('div', { className: 'receipts', 'data-testid': 'receipts' });
  composer = h('textarea', { name: 'text', placeholder: 'Message', rows: '2', 'data-testid': 'composer' });
  threadPane = h('aside', { className: 'thread', 'data-testid': 'thread' });
  status = h('span', { className: 'status', 'data-testid': 'status' });
  search = h('input', { type: 'search', placeholder: 'Search messages', 'data-testid': 'search' });
  fileInput = h('input', { type: 'file', hidden: true, 'data-testid': 'attach' });
  uploadLine = h('span', { className: 'upload', 'data-testid': 'upload-status' });

  constructor(session: Session) {
    this.session = session;
    this.me = session.user_id;
    const token = async () => {
      if (Date.parse(this.session.expires_at) - Date.now() < 120_000) {
        this.session = await requestSession(this.me);
      }
      return this.session.token;
    };
    this.client = new ParleyClient({ baseUrl: location.origin, token });
    this.live = this.client.realtime();
  }

  async start(): Promise<void> {
    const users = await this.client.get('/v1/users', { params: { query: { limit: 100 } } });
    for (const user of users.data) this.names.set(user.id, user.name ?? user.id);
    this.layout();
    this.live.on('state', (state) => {
      this.status.textContent = state === 'ready' ? 'live' : state;
      this.status.dataset.state = state;
    });
    this.live.on('event', (event) => this.onEvent(event));
    this.live.on('outbox', (outgoing) => this.onOutbox(outgoing));
    this.live.on('reset', () => void this.reload());
    await this.reload();
    await this.live.connect();
    this.receiptsTimer = setInterval(() => void this.loadReceipts(), 3000);
  }

  nameOf(userId: string): string {
    return this.names.get(userId) ?? userId;
  }

  layout(): void {
    const send = (event: Event) => {
      event.preventDefault();
      this.sendComposer();
    };
    this.composer.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) send(event);
    });
    this.composer.addEventListener('input', () => this.sendTyping());
    this.fileInput.addEventListener('change', () => void this.attach());
    this.search.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') void this.runSearch(this.search.value.trim());
    });
    this.timeline.addEventListener('scroll', () => {
      if (this.timeline.scrollTop < 60) void this.loadOlder();
    });
    app.replaceChildren(
      h(
        'div',
        { className: 'chat' },
        h(
          'nav',
          {},
          h(
            'div',
            { className: 'me' },
            h('span', { className: 'avatar' }, this.nameOf(this.me).slice(0, 1)),
            h('strong', { 'data-testid': 'me' }, this.me),
            this.status,
            h(
              'button',
              {
                className: 'link',
                onClick: () => {
                  sessionStorage.removeItem(SESSION_KEY);
                  this.live.close();
                  location.reload();
                },
              },
              'sign out',
            ),
          ),
          this.search,
          this.list,
        ),
        h(
          'section',
          { className: 'main' },
          this.header,
          this.timeline,
          this.typingLine,
          this.receiptsLine,
          h(
            'form',
            { className: 'compose', onSubmit: send },
            h(
              'button',
              {
                type: 'button',
                className: 'attach',
                title: 'Attach a file',
                onClick: () => this.fileInput.click(),
              },
              '📎',
            ),
            this.fileInput,
            this.composer,
            this.uploadLine,
            h('button', { type: 'submit', 'data-testid': 'send' }, 'Send'),
          ),
        ),
        this.threadPane,
      ),
    );
  }

  /** Loads what the page shows from REST: at start, and after a reset (events were missed). */
  async reload(): Promise<void> {
    const page = await this.client.get('/v1/conversations', { params: { query: { limit: 100 } } });
    this.conversations = new Map(page.data.map((c) => [c.id, c]));
    await Promise.all(
      page.data
        .filter((c) => c.type === 'direct' && !this.directNames.has(c.id))
        .map(async (c) => {
          const members = await this.client.get('/v1/conversations/{conversation_id}/members', {
            params: { path: { conversation_id: c.id } },
          });
          const other = members.data.find((m) => m.user_id !== this.me);
          this.directNames.set(c.id, other === undefined ? 'direct' : this.nameOf(other.user_id));
        }),
    );
    this.renderList();
    const first = this.openId ?? this.sortedConversations()[0]?.id;
    if (first !== undefined) await this.open(first);
  }

  titleOf(conversation: Conversation): string {
    if (conversation.type === 'direct') return this.directNames.get(conversation.id) ?? 'direct';
    return `${conversation.type === 'channel' ? '#' : ''}${conversation.name ?? 'untitled'}`;
  }

  /** Most recent activity first. */
  sortedConversations(): Conversation[] {
    const activity = (c: Conversation) => c.last_message?.created_at ?? c.updated_at;
    return [...this.conversations.values()].sort((a, b) => activity(b).localeCompare(activity(a)));
  }

  renderList(): void {
    const sorted = this.sortedConversations();
    this.list.replaceChildren(
      ...sorted.map((c) => {
        const title = this.titleOf(c);
        const otherOnline =
          c.type === 'direct' &&
          [...this.online].some((userId) => this.directNames.get(c.id) === this.nameOf(userId));
        return h(
          'li',
          {
            className: c.id === this.openId ? 'open' : '',
            'data-testid': `conversation-${c.type === 'direct' ? (this.directNames.get(c.id) ?? c.id) : (c.name ?? c.id)}`,
            onClick: () => void this.open(c.id),
          },
          otherOnline ? h('span', { className: 'online', title: 'online' }) : null,
          h('span', { className: 'title' }, title),
          c.mention_count > 0 &&
            h('span', { className: 'badge mention', 'data-testid': 'mentions' }, `@${c.mention_count}`),
          c.unread_count > 0 &&
            h('span', { className: 'badge', 'data-testid': 'unread' }, String(c.unread_count)),
        );
      }),
    );
  }

  async open(conversationId: string): Promise<void> {
    this.openId = conversationId;
    this.thread = null;
    this.editing = null;
    // Events of this conversation that arrive while its page is on its way are collected here (addMessage),
    // and kept: the page was read before them, so replacing the timeline with it alone would lose them.
    this.messages = [];
    const history = await this.client.get('/v1/conversations/{conversation_id}/messages', {
      params: { path: { conversation_id: conversationId }, query: { limit: 30 } },
    });
    if (this.openId !== conversationId) return;
    const inPage = new Set(history.data.map((message) => message.id));
    const arrived = this.messages.filter((message) => !inPage.has(message.id));
    this.messages = [...history.data, ...arrived].sort((a, b) => a.seq - b.seq);
    this.hasMoreBefore = history.has_more_before;
    this.renderHeader();
    this.renderList();
    this.renderTimeline('bottom');
    this.renderThread();
    this.renderTyping();
    this.markRead();
    void this.loadReceipts();
  }

  renderHeader(): void {
    const conversation = this.openId === null ? undefined : this.conversations.get(this.openId);
    if (conversation === undefined) {
      this.header.replaceChildren();
      return;
    }
    this.header.replaceChildren(
      h('h2', { 'data-testid': 'conversation-title' }, this.titleOf(conversation)),
      ...(conversation.topic === null ? [] : [h('span', { className: 'topic' }, conversation.topic)]),
    );
  }

  /** Older messages when the timeline is scrolled to its top: infinite scroll. */
  async loadOlder(): Promise<void> {
    const first = this.messages[0];
    if (!this.hasMoreBefore || this.loadingOlder || first === undefined || this.openId === null) return;
    this.loadingOlder = true;
    const conversationId = this.openId;
    try {
      const page = await this.client.get('/v1/conversations/{conversation_id}/messages', {
        params: { path: { conversation_id: conversationId }, query: { before_seq: first.seq, limit: 30 } },
      });
      if (this.openId !== conversationId) return;
      this.messages = [...page.data, ...this.messages];
      this.hasMoreBefore = page.has_more_before;
      this.renderTimeline('keep');
    } finally {
      this.loadingOlder = false;
    }
  }

  renderTimeline(scroll: 'bottom' | 'keep' | 'auto'): void {
    const atBottom = this.timeline.scrollHeight - this.timeline.scrollTop - this.timeline.clientHeight < 40;
    const fromBottom = this.timeline.scrollHeight - this.timeline.scrollTop;
    const pending = this.pending.filter(
      (p) => p.conversation_id === this.openId && p.thread_root_id === undefined,
    );
    this.timeline.replaceChildren(
      this.hasMoreBefore
        ? h('div', { className: 'more' }, 'Scroll up for older messages')
        : h('div', { className: 'more' }, 'The beginning'),
      ...this.messages.map((m) => this.renderMessage(m, true)),
      ...pending.map((p) =>
        h(
          'div',
          { className: `message ${p.status}`, 'data-testid': 'pending-message' },
          h(
            'div',
            { className: 'meta' },
            h('strong', {}, this.nameOf(this.me)),
            h('span', {}, p.status === 'failed' ? `not sent: ${p.error?.message ?? ''}` : 'sending…'),
          ),
          h('div', { className: 'text' }, p.text ?? ''),
        ),
      ),
    );
    if (scroll === 'bottom' || (scroll === 'auto' && atBottom))
      this.timeline.scrollTop = this.timeline.scrollHeight;
    else if (scroll === 'keep') this.timeline.scrollTop = this.timeline.scrollHeight - fromBottom;
  }

  renderMessage(message: Message, inTimeline: boolean): HTMLElement {
    const mine = message.sender_id === this.me;
    const deleted = message.deleted_at !== null;
    const actions = deleted
      ? []
      : [
          ...REACTIONS.map((emoji) =>
            h(
              'button',
              {
                className: 'react',
                title: `react ${emoji}`,
                'data-testid': `react-${emoji}`,
                onClick: () => void this.toggleReaction(message, emoji),
              },
              emoji,
            ),
          ),
          inTimeline &&
            h('button', { 'data-testid': 'reply', onClick: () => void this.openThread(message) }, 'Reply'),
          mine && h('button', { 'data-testid': 'edit', onClick: () => this.startEdit(message) }, 'Edit'),
          mine &&
            h('button', { 'data-testid': 'delete', onClick: () => void this.remove(message) }, 'Delete'),
        ];
    const body =
      this.editing === message.id
        ? this.editor(message)
        : h(
            'div',
            { className: 'text', 'data-testid': 'text' },
            deleted ? 'This message was deleted.' : (message.text ?? ''),
          );
    return h(
      'div',
      {
        className: `message${mine ? ' mine' : ''}${deleted ? ' deleted' : ''}`,
        'data-testid': 'message',
        'data-seq': message.seq,
        'data-id': message.id,
      },
      h(
        'div',
        { className: 'meta' },
        h('strong', {}, this.nameOf(message.sender_id)),
        h('time', { datetime: message.created_at }, new Date(message.created_at).toLocaleTimeString()),
        message.edited_at !== null && !deleted && h('span', { 'data-testid': 'edited' }, '(edited)'),
        message.pinned_at !== null && h('span', {}, '📌'),
      ),
      body,
      !deleted &&
        message.attachments.length > 0 &&
        h('div', { className: 'attachments' }, ...message.attachments.map((a) => this.renderAttachment(a))),
      message.reactions.length > 0 &&
        h(
          'div',
          { className: 'reactions', 'data-testid': 'reactions' },
          ...message.reactions.map((r) =>
            h(
              'button',
              {
                className: r.me ? 'chip me' : 'chip',
                onClick: () => void this.toggleReaction(message, r.emoji),
              },
              `${r.emoji} ${r.count}`,
            ),
          ),
        ),
      inTimeline &&
        message.reply_count > 0 &&
        h(
          'button',
          { className: 'link', 'data-testid': 'replies', onClick: () => void this.openThread(message) },
          `${message.reply_count} ${message.reply_count === 1 ? 'reply' : 'replies'}`,
        ),
      h('div', { className: 'actions' }, ...actions),
    );
  }

  editor(message: Message): HTMLElement {
    const input = h('input', { value: message.text ?? '', 'data-testid': 'edit-text' });
    const save = (event: Event) => {
      event.preventDefault();
      this.editing = null;
      void this.client
        .patch('/v1/messages/{message_id}', {
          params: { path: { message_id: message.id } },
          body: { text: input.value },
        })
        .then((updated) => this.replace(updated));
    };
    setTimeout(() => input.focus(), 0);
    return h(
      'form',
      { className: 'editor', onSubmit: save },
      input,
      h('button', { type: 'submit', 'data-testid': 'save-edit' }, 'Save'),
    );
  }

  startEdit(message: Message): void {
    this.editing = message.id;
    this.renderTimeline('keep');
  }

  async remove(message: Message): Promise<void> {
    // 204; the message.deleted event brings the tombstone.
    await this.client.delete('/v1/messages/{message_id}', { params: { path: { message_id: message.id } } });
  }

  async toggleReaction(message: Message, emoji: string): Promise<void> {
    const mine = message.reactions.find((r) => r.emoji === emoji)?.me === true;
    const options = { params: { path: { message_id: message.id, emoji } } };
    const updated = mine
      ? await this.client.delete('/v1/messages/{message_id}/reactions/{emoji}', options)
      : await this.client.put('/v1/messages/{message_id}/reactions/{emoji}', options);
    this.replace(updated);
  }

  /** Puts a newer version of a message wherever it is shown. */
  replace(message: Message): void {
    const swap = (list: Message[]) => list.map((m) => (m.id === message.id ? message : m));
    this.messages = swap(this.messages);
    if (this.thread !== null) {
      this.thread = {
        root: this.thread.root.id === message.id ? message : this.thread.root,
        replies: swap(this.thread.replies),
      };
      this.renderThread();
    }
    this.renderTimeline('keep');
  }

  /** Uploads the chosen file (multipart, through the SDK), then sends it with the composer's text, if any. */
  async attach(): Promise<void> {
    const file = this.fileInput.files?.[0];
    const conversationId = this.openId;
    if (file === undefined || conversationId === null) return;
    this.uploadLine.textContent = `uploading ${file.name}…`;
    try {
      const form = new FormData();
      form.append('file', file, file.name);
      const { data } = await this.client.api.POST('/v1/attachments', { body: form as never });
      const uploaded = data as AttachmentView;
      const text = this.composer.value.trim();
      this.composer.value = '';
      this.pending.push(
        this.live.send(conversationId, { ...(text === '' ? {} : { text }), attachment_ids: [uploaded.id] }),
      );
      this.uploadLine.textContent = '';
      this.renderTimeline('bottom');
    } catch (error) {
      this.uploadLine.textContent =
        error instanceof ParleyError ? `not uploaded: ${error.message}` : 'not uploaded';
    } finally {
      this.fileInput.value = '';
    }
  }

  renderAttachment(attachment: AttachmentView): HTMLElement {
    const size =
      attachment.size < 1024 * 1024
        ? `${Math.ceil(attachment.size / 1024)} KB`
        : `${(attachment.size / 1024 / 1024).toFixed(1)} MB`;
    if (attachment.status === 'pending') {
      return h(
        'div',
        { className: 'attachment', 'data-testid': 'attachment-pending' },
        `${attachment.name} (processing…)`,
      );
    }
    if (attachment.status === 'rejected') {
      return h(
        'div',
        { className: 'attachment', 'data-testid': 'attachment-rejected' },
        `${attachment.name}: ${attachment.rejected_reason ?? 'rejected'}`,
      );
    }
    const thumbnail = attachment.thumbnails[0];
    if (thumbnail !== undefined) {
      return h(
        'a',
        { className: 'attachment image', href: attachment.url, target: '_blank', rel: 'noopener' },
        h('img', {
          src: thumbnail.url,
          width: thumbnail.width,
          height: thumbnail.height,
          alt: attachment.name,
          'data-testid': 'attachment-image',
        }),
      );
    }
    return h(
      'a',
      { className: 'attachment', href: attachment.url, 'data-testid': 'attachment-file' },
      `📄 ${attachment.name} · ${size}`,
    );
  }

  sendComposer(): void {
    const text = this.composer.value.trim();
    if (text === '' || this.openId === null) return;
    this.composer.value = '';
    this.pending.push(this.live.send(this.openId, { text }));
    void this.live.typing(this.openId, false);
    this.lastTypingSent = 0;
    this.renderTimeline('bottom');
  }

  sendTyping(): void {
    if (this.openId === null || this.composer.value === '') return;
    // Renewed every 3 s while typing; the server stops it 6 s after the last.
    if (Date.now() - this.lastTypingSent < 3000) return;
    this.lastTypingSent = Date.now();
    void this.live.typing(this.openId, true);
  }

  onOutbox(outgoing: OutgoingMessage): void {
    if (outgoing.status === 'sent' && outgoing.message !== undefined) {
      this.pending = this.pending.filter((p) => p !== outgoing);
      this.addMessage(outgoing.message);
    } else if (outgoing.status === 'failed') {
      this.renderTimeline('auto');
    }
  }

  /** A message the timeline (or the open thread) may not have yet: once only, in seq order. */
  addMessage(message: Message): void {
    if (message.thread_root_id !== null) {
      if (
        this.thread?.root.id === message.thread_root_id &&
        !this.thread.replies.some((m) => m.id === message.id)
      ) {
        this.thread.replies = [...this.thread.replies, message].sort((a, b) => a.seq - b.seq);
        this.renderThread();
      }
      return;
    }
    // Our own message may come as an event before its acknowledgement: it replaces the pending one.
    this.pending = this.pending.filter((p) => p.client_msg_id !== message.client_msg_id);
    if (message.conversation_id !== this.openId || this.messages.some((m) => m.id === message.id)) return;
    this.messages = [...this.messages, message].sort((a, b) => a.seq - b.seq);
    this.renderTimeline('auto');
  }

  onEvent(event: ParleyEvent): void {
    switch (event.type) {
      case 'message.created': {
        const message = event.data;
        this.addMessage(message);
        const conversation = this.conversations.get(event.conversation_id);
        if (conversation === undefined) {
          void this.reload();
          return;
        }
        if (message.thread_root_id === null) {
          conversation.last_message = message;
          if (message.sender_id !== this.me) {
            if (event.conversation_id === this.openId && document.visibilityState === 'visible')
              this.markRead();
            else {
              conversation.unread_count++;
              if (message.mentions.includes(this.me)) conversation.mention_count++;
            }
          }
        } else {
          const root = this.messages.find((m) => m.id === message.thread_root_id);
          if (root !== undefined) this.replace({ ...root, reply_count: root.reply_count + 1 });
        }
        this.clearTyping(event.conversation_id, message.sender_id);
        this.renderList();
        return;
      }
      case 'message.updated':
      case 'message.deleted':
        this.replace(event.data);
        return;
      case 'reaction.added':
      case 'reaction.removed': {
        const { message_id, emoji, user_id } = event.data;
        const target =
          this.messages.find((m) => m.id === message_id) ??
          this.thread?.replies.find((m) => m.id === message_id) ??
          (this.thread?.root.id === message_id ? this.thread.root : undefined);
        if (target === undefined) return;
        const added = event.type === 'reaction.added';
        const reactions = target.reactions.map((r) => ({ ...r }));
        const existing = reactions.find((r) => r.emoji === emoji);
        if (existing !== undefined) {
          existing.count += added ? 1 : -1;
          if (user_id === this.me) existing.me = added;
        } else if (added) reactions.push({ emoji, count: 1, me: user_id === this.me });
        this.replace({ ...target, reactions: reactions.filter((r) => r.count > 0) });
        return;
      }
      case 'read.updated': {
        const conversation = this.conversations.get(event.conversation_id);
        if (conversation !== undefined && event.data.last_read_seq >= (conversation.last_message?.seq ?? 0)) {
          conversation.unread_count = 0;
          conversation.mention_count = 0;
          this.renderList();
        }
        return;
      }
      case 'typing.started': {
        if (event.data.user_id === this.me) return;
        const users =
          this.typing.get(event.conversation_id) ?? new Map<string, ReturnType<typeof setTimeout>>();
        clearTimeout(users.get(event.data.user_id));
        users.set(
          event.data.user_id,
          setTimeout(() => this.clearTyping(event.conversation_id, event.data.user_id), 7000),
        );
        this.typing.set(event.conversation_id, users);
        this.renderTyping();
        return;
      }
      case 'typing.stopped':
        this.clearTyping(event.conversation_id, event.data.user_id);
        return;
      case 'presence.changed':
        if (event.data.status === 'online') this.online.add(event.data.user_id);
        else this.online.delete(event.data.user_id);
        this.renderList();
        return;
      case 'conversation.created':
      case 'conversation.updated':
      case 'conversation.deleted':
      case 'member.added':
      case 'member.removed':
      case 'member.updated':
        void this.reload();
        return;
      case 'attachment.updated': {
        const { message_id, attachment } = event.data;
        const target =
          this.messages.find((m) => m.id === message_id) ??
          this.thread?.replies.find((m) => m.id === message_id);
        if (target !== undefined) {
          this.replace({
            ...target,
            attachments: target.attachments.map((a) => (a.id === attachment.id ? attachment : a)),
          });
        }
        return;
      }
      default:
        return; // types a newer server may add
    }
  }

  clearTyping(conversationId: string, userId: string): void {
    const users = this.typing.get(conversationId);
    if (users === undefined || !users.has(userId)) return;
    clearTimeout(users.get(userId));
    users.delete(userId);
    this.renderTyping();
  }

  renderTyping(): void {
    const users = [...(this.openId === null ? [] : (this.typing.get(this.openId)?.keys() ?? []))];
    this.typingLine.textContent =
      users.length === 0
        ? ''
        : `${users.map((u) => this.nameOf(u)).join(', ')} ${users.length === 1 ? 'is' : 'are'} typing…`;
  }

  /** Moves the read watermark to the latest message, shortly after it is seen. */
  markRead(): void {
    if (this.readTimer !== null) clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => {
      const conversation = this.openId === null ? undefined : this.conversations.get(this.openId);
      if (conversation === undefined) return;
      conversation.unread_count = 0;
      conversation.mention_count = 0;
      this.renderList();
      // Up to what this page has shown, not whatever the server has by the time the frame arrives.
      const seen = this.messages.at(-1)?.seq;
      void this.live.markRead(conversation.id, seen).catch(() => undefined);
    }, 300);
  }

  /** Who has read my last message in the open conversation (read receipts). */
  async loadReceipts(): Promise<void> {
    const last = [...this.messages].reverse().find((m) => m.sender_id === this.me && m.deleted_at === null);
    if (last === undefined || document.visibilityState !== 'visible') {
      this.receiptsLine.textContent = '';
      return;
    }
    try {
      const page = await this.client.get('/v1/messages/{message_id}/receipts', {
        params: { path: { message_id: last.id } },
      });
      const readers = page.data.map((r) => r.user_id).filter((u) => u !== this.me);
      this.receiptsLine.textContent =
        readers.length === 0 ? '' : `Seen by ${readers.map((u) => this.nameOf(u)).join(', ')}`;
    } catch (error) {
      if (!(error instanceof ParleyError)) throw error;
    }
  }

  async openThread(root: Message): Promise<void> {
    const replies = await this.client.get('/v1/messages/{message_id}/replies', {
      params: { path: { message_id: root.id } },
    });
    this.thread = { root, replies: replies.data };
    this.renderThread();
  }

  renderThread(): void {
    const thread = this.thread;
    if (thread === null) {
      this.threadPane.replaceChildren();
      this.threadPane.hidden = true;
      return;
    }
    this.threadPane.hidden = false;
    const input = h('input', { placeholder: 'Reply in thread', 'data-testid': 'thread-composer' });
    const reply = (event: Event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (text === '') return;
      input.value = '';
      this.live.send(thread.root.conversation_id, { text, thread_root_id: thread.root.id });
    };
    this.threadPane.replaceChildren(
      h(
        'header',
        {},
        h('h3', {}, 'Thread'),
        h(
          'button',
          {
            className: 'link',
            onClick: () => {
              this.thread = null;
              this.renderThread();
            },
          },
          'close',
        ),
      ),
      this.renderMessage(thread.root, false),
      h('div', { className: 'replies' }, ...thread.replies.map((m) => this.renderMessage(m, false))),
      h(
        'form',
        { className: 'compose', onSubmit: reply },
        input,
        h('button', { type: 'submit', 'data-testid': 'thread-send' }, 'Reply'),
      ),
    );
  }

  async runSearch(query: string): Promise<void> {
    if (query === '') {
      this.renderTimeline('bottom');
      return;
    }
    const results = await this.client.get('/v1/search/messages', {
      params: { query: { q: query, limit: 20 } },
    });
    this.timeline.replaceChildren(
      h(
        'div',
        { className: 'more' },
        `${results.data.length} result(s) for “${query}”`,
        ' ',
        h(
          'button',
          {
            className: 'link',
            onClick: () => {
              this.search.value = '';
              this.renderTimeline('bottom');
            },
          },
          'back',
        ),
      ),
      ...results.data.map((result) => {
        const snippet = h('div', { className: 'text' });
        // The server escapes the text and marks the matches (docs/API.md, Search).
        snippet.innerHTML = result.highlight;
        const conversation = this.conversations.get(result.message.conversation_id);
        return h(
          'div',
          {
            className: 'message result',
            'data-testid': 'search-result',
            onClick: () => void this.open(result.message.conversation_id),
          },
          h(
            'div',
            { className: 'meta' },
            h('strong', {}, this.nameOf(result.message.sender_id)),
            h('span', {}, conversation === undefined ? '' : this.titleOf(conversation)),
          ),
          snippet,
        );
      }),
    );
  }
}

const session = savedSession();
if (session === null) void showSignIn();
else void new Chat(session).start();
