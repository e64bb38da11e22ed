/**
 * A thin typed client for openapi.json, type-checked by tests/integration/test_contract.py (`tsc`, never run).
 *
 * It mirrors the surface a Speakeasy regeneration produces with sdk/.speakeasy/gen.yaml (README, "The generated
 * SDK") and that shared/SDK-CHATS.md documents: `new AuroraChatbotSDK()`, `chats.listForUser(options?)`,
 * `chats.initialize(characterId, options?)`, `chats.delete(chatId, options?)` returning
 * `operations.GetChatsForUserResponse` / `InitializeChatResponse` / `DeleteChatResponse`, every 4xx-5xx thrown as
 * an `errors.SDKError`, plus `chats.listPages(limit?, cursor?, options?)`. Every type comes from the types
 * openapi-typescript generates from the committed document, so a document change that would break one of those
 * calls or types fails to compile here.
 */
import createClient, { type Client } from "openapi-fetch";

import type { components, paths } from "./generated/schema";

type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;

/** The seed's response types: the inline success bodies of the three operations (not components). */
export namespace operations {
  export type GetChatsForUserResponse = Json<paths["/chats"]["get"]["responses"][200]>;
  export type InitializeChatResponse = Json<paths["/characters/{characterId}/chats"]["post"]["responses"][201]>;
  export type InitializeChatReplay = Json<paths["/characters/{characterId}/chats"]["post"]["responses"][200]>;
  export type DeleteChatResponse = Json<paths["/chats/{chatId}"]["delete"]["responses"][200]>;
  export type GetChatPagesForUserResponse = { result: components["schemas"]["ChatListPage"] };
}

// Compile-time checks of the document's shape for the SDK (each line fails to compile if the document changes it).
type Assert<T extends true> = T;
type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** The replay (200) and the creation (201) share one body type, as the SDK's single `InitializeChatResponse`. */
export type _SameInitializeBody = Assert<Equal<operations.InitializeChatReplay, operations.InitializeChatResponse>>;
/** The hidden inputs (x-speakeasy-ignore) stay optional: `listForUser()` / `initialize(id)` need none of them. */
export type _ListInputsOptional = Assert<
  undefined extends paths["/chats"]["get"]["parameters"]["query"] ? true : false
>;
export type _KeyOptional = Assert<
  undefined extends paths["/characters/{characterId}/chats"]["post"]["parameters"]["header"] ? true : false
>;

export type Problem = components["schemas"]["Problem"];

/** The seed's `RequestOptions`: "All `Request` options, except `method` and `body`, are allowed." */
export type RequestOptions = {
  fetchOptions?: Omit<RequestInit, "method" | "body">;
  retries?: RetryConfig;
};
export type RetryConfig =
  | { strategy: "none" }
  | {
      strategy: "backoff";
      backoff?: { initialInterval: number; maxInterval: number; exponent: number; maxElapsedTime: number };
      retryConnectionErrors?: boolean;
    };

export namespace errors {
  /** The base of every HTTP error (gen.yaml `baseErrorName: SDKError`): `instanceof errors.SDKError` for 4xx-5xx. */
  export class SDKError extends Error {
    constructor(
      message: string,
      readonly statusCode: number,
      readonly contentType: string,
      readonly body: string,
      readonly rawResponse: Response,
      readonly headers: Headers = rawResponse.headers,
    ) {
      super(message);
    }
  }
  /** A problem+json answer (the document's `Problem` on every 4xx-5xx but the gateway's 429). */
  export class ProblemError extends SDKError {
    constructor(
      readonly problem: Problem,
      rawResponse: Response,
    ) {
      super(problem.detail, rawResponse.status, "application/problem+json", JSON.stringify(problem), rawResponse);
    }
  }
  /** The fallback (gen.yaml `defaultErrorName: SDKDefaultError`): e.g. the gateway's 429 without a body. */
  export class SDKDefaultError extends SDKError {}
}

function unwrap<T>(result: { data?: T | undefined; error?: Problem | undefined; response: Response }): T {
  if (result.data !== undefined) {
    return result.data;
  }
  if (result.error !== undefined) {
    throw new errors.ProblemError(result.error, result.response);
  }
  const { response } = result;
  throw new errors.SDKDefaultError(
    `HTTP ${response.status}`,
    response.status,
    response.headers.get("content-type") ?? "",
    "",
    response,
  );
}

/** What the generated SDK passes on from `options.fetchOptions` (headers such as `Idempotency-Key`, signal...). */
function init(options: RequestOptions | undefined): Omit<RequestInit, "method" | "body"> {
  return options?.fetchOptions ?? {};
}

export class Chats {
  constructor(private readonly client: Client<paths>) {}

  /** Get all chats assigned to user: the first page (`listPages` pages through all of them). */
  async listForUser(options?: RequestOptions): Promise<operations.GetChatsForUserResponse> {
    return unwrap(await this.client.GET("/chats", { ...init(options) }));
  }

  /** Initialize chat with AI character; an `Idempotency-Key` goes in `options.fetchOptions.headers`. */
  async initialize(characterId: number, options?: RequestOptions): Promise<operations.InitializeChatResponse> {
    return unwrap(
      await this.client.POST("/characters/{characterId}/chats", { ...init(options), params: { path: { characterId } } }),
    );
  }

  /** Delete a chat (retry-safe: a repeat by the same caller answers the same 200 for 24 h). */
  async delete(chatId: number, options?: RequestOptions): Promise<operations.DeleteChatResponse> {
    return unwrap(await this.client.DELETE("/chats/{chatId}", { ...init(options), params: { path: { chatId } } }));
  }

  /** Every page of the caller's chats: `cursor = nextCursor` until it is null (x-speakeasy-pagination, no `results`). */
  async *listPages(
    limit?: number,
    cursor?: string,
    options?: RequestOptions,
  ): AsyncGenerator<operations.GetChatPagesForUserResponse> {
    let next: string | null | undefined = cursor;
    do {
      const query: NonNullable<paths["/chats/pages"]["get"]["parameters"]["query"]> = {};
      if (limit !== undefined) query.limit = limit;
      if (next !== undefined && next !== null) query.cursor = next;
      const page = unwrap(await this.client.GET("/chats/pages", { ...init(options), params: { query } }));
      yield { result: page };
      next = page.nextCursor;
    } while (next !== null);
  }
}

/** The document's `servers`, in order: `serverIdx` 0 (the default) is the deployed API. */
export const ServerList = [
  "https://{apiId}.execute-api.{region}.amazonaws.com",
  "http://127.0.0.1:3000",
] as const;

export type SDKOptions = {
  bearerAuth?: string;
  serverIdx?: number;
  serverURL?: string;
  apiId?: string;
  region?: string;
};

export class AuroraChatbotSDK {
  readonly chats: Chats;

  constructor(options: SDKOptions = {}) {
    const template = ServerList[options.serverIdx ?? 0] ?? ServerList[0];
    const baseUrl =
      options.serverURL ??
      template.replace("{apiId}", options.apiId ?? "example").replace("{region}", options.region ?? "us-east-1");
    const headers: Record<string, string> = options.bearerAuth ? { Authorization: `Bearer ${options.bearerAuth}` } : {};
    this.chats = new Chats(createClient<paths>({ baseUrl, headers }));
  }
}

// The calls exactly as the SDK docs show them, with the result types the SDK documents.
export async function run(): Promise<void> {
  const auroraChatbotSDK = new AuroraChatbotSDK();

  const list: operations.GetChatsForUserResponse = await auroraChatbotSDK.chats.listForUser();
  const chatIds: number[] = list.chatIds;
  const nextCursor: string | null = list.nextCursor;
  const firstCharacter: number | undefined = list.chats[0]?.characterId;

  const chat: operations.InitializeChatResponse = await auroraChatbotSDK.chats.initialize(330905);
  const chatId: number = chat.chatId;
  const greeting: string = chat.message.content;
  const role: "character" | "user" = chat.message.role;

  const result: operations.DeleteChatResponse = await auroraChatbotSDK.chats.delete(8);
  const deleted: true = result.deleted;

  // `options` in the seed's place, for all three (what x-speakeasy-ignore on the optional inputs keeps working).
  const options: RequestOptions = { retries: { strategy: "none" } };
  await auroraChatbotSDK.chats.listForUser(options);
  await auroraChatbotSDK.chats.delete(8, options);
  // The Idempotency-Key header, through fetchOptions: every SDK retry of this call carries the same key.
  const key = "5f0c6f1e-3b8a-4d2e-9a57-2f1f0f7c9b1d";
  await auroraChatbotSDK.chats.initialize(330905, { fetchOptions: { headers: { "Idempotency-Key": key } } });

  // Paging through everything: listPages.
  const all: number[] = [];
  for await (const page of auroraChatbotSDK.chats.listPages(50)) {
    all.push(...page.result.chatIds);
  }

  try {
    await auroraChatbotSDK.chats.delete(8);
  } catch (err) {
    if (err instanceof errors.SDKError) {
      const status: number = err.statusCode;
      console.log(status, err.contentType, err.body, err.rawResponse.status);
    }
  }

  const local = new AuroraChatbotSDK({ serverIdx: 1 });
  const deployed = new AuroraChatbotSDK({ apiId: "a1b2c3d4e5", region: "eu-west-1" });
  console.log(chatIds, nextCursor, firstCharacter, chatId, greeting, role, deleted, all, local, deployed);
}
