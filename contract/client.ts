/**
 * A minimal client for openapi.json, type-checked by tests/test_contract.py (`tsc`, never run).
 *
 * It mirrors the published SDK's surface (`AuroraChatbotSDK().chats.listForUser() / initialize(characterId) /
 * delete(chatId)`) on top of openapi-fetch and the types openapi-typescript generates from the committed document,
 * so a change to the document that would break the SDK's calls or their result types fails to compile here.
 */
import createClient, { type Client } from "openapi-fetch";

import type { components, paths } from "./generated/schema";

type Schemas = components["schemas"];
export type GetChatsForUserResponse = Schemas["GetChatsForUserResponse"];
export type InitializeChatResponse = Schemas["InitializeChatResponse"];
export type DeleteChatResponse = Schemas["DeleteChatResponse"];
export type Problem = Schemas["Problem"];

/** An error answer: the RFC 9457 problem when the API sent one (429 from the gateway has no body). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | undefined,
  ) {
    super(problem?.detail ?? `HTTP ${status}`);
  }
}

function unwrap<T>(result: { data?: T | undefined; error?: Problem | undefined; response: Response }): T {
  if (result.data !== undefined) {
    return result.data;
  }
  throw new ApiError(result.response.status, result.error);
}

export class Chats {
  constructor(private readonly client: Client<paths>) {}

  /** Get all chats assigned to the user (one page; `nextCursor` continues it). */
  async listForUser(limit?: number, cursor?: string): Promise<GetChatsForUserResponse> {
    const query: NonNullable<paths["/chats"]["get"]["parameters"]["query"]> = {};
    if (limit !== undefined) query.limit = limit;
    if (cursor !== undefined) query.cursor = cursor;
    return unwrap(await this.client.GET("/chats", { params: { query } }));
  }

  /** Initialize a chat with an AI character; its greeting comes back as the first message. */
  async initialize(characterId: number, idempotencyKey?: string): Promise<InitializeChatResponse> {
    const header = idempotencyKey === undefined ? {} : { "Idempotency-Key": idempotencyKey };
    return unwrap(
      await this.client.POST("/characters/{characterId}/chats", { params: { path: { characterId }, header } }),
    );
  }

  /** Delete a chat and all of its stored message history. */
  async delete(chatId: number): Promise<DeleteChatResponse> {
    return unwrap(await this.client.DELETE("/chats/{chatId}", { params: { path: { chatId } } }));
  }
}

export class AuroraChatbotSDK {
  readonly chats: Chats;

  constructor(options: { serverURL?: string; bearerAuth?: string } = {}) {
    const headers: Record<string, string> = options.bearerAuth ? { Authorization: `Bearer ${options.bearerAuth}` } : {};
    this.chats = new Chats(createClient<paths>({ baseUrl: options.serverURL ?? "http://127.0.0.1:3000", headers }));
  }
}

// The three calls exactly as the SDK docs show them, with the result types the SDK documents.
export async function run(): Promise<void> {
  const auroraChatbotSDK = new AuroraChatbotSDK();

  const list = await auroraChatbotSDK.chats.listForUser();
  const chatIds: number[] = list.chatIds;
  const nextCursor: string | null = list.nextCursor;
  const firstCharacter: number | undefined = list.chats[0]?.characterId;

  const chat = await auroraChatbotSDK.chats.initialize(330905);
  const chatId: number = chat.chatId;
  const greeting: string = chat.message.content;
  const role: "character" | "user" = chat.message.role;

  const result = await auroraChatbotSDK.chats.delete(8);
  const deleted: true = result.deleted;

  console.log(chatIds, nextCursor, firstCharacter, chatId, greeting, role, deleted);
}
